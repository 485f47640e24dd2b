#!/usr/bin/env python3
"""Writes the tiny Llama-style checkpoint of this example: model.safetensors and config.json.

Standard library only. The weights are real BF16 numbers drawn from a fixed-seed generator,
so the file is the same on every machine. Run from anywhere:
    python3 examples/tiny-checkpoint/make_checkpoint.py
"""
import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

CONFIG = {
    "_name_or_path": "hf-internal-testing/tiny-random-LlamaForCausalLM",
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 32,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-05,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.46.3",
}


def shapes(c):
    h, i, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = c["num_key_value_heads"] * (h // c["num_attention_heads"])
    out = [("model.embed_tokens.weight", [v, h])]
    for n in range(c["num_hidden_layers"]):
        p = f"model.layers.{n}."
        out += [
            (p + "input_layernorm.weight", [h]),
            (p + "mlp.down_proj.weight", [h, i]),
            (p + "mlp.gate_proj.weight", [i, h]),
            (p + "mlp.up_proj.weight", [i, h]),
            (p + "post_attention_layernorm.weight", [h]),
            (p + "self_attn.k_proj.weight", [kv, h]),
            (p + "self_attn.o_proj.weight", [h, h]),
            (p + "self_attn.q_proj.weight", [h, h]),
            (p + "self_attn.v_proj.weight", [kv, h]),
        ]
    out += [("model.norm.weight", [h]), ("lm_head.weight", [v, h])]
    return sorted(out)


def bf16(x):
    """The upper half of the float32 bits: a real BF16 value."""
    return struct.pack("<f", x)[2:]


def main():
    rng = random.Random(1234)
    header, data = {"__metadata__": {"format": "pt"}}, bytearray()
    for name, shape in shapes(CONFIG):
        count = 1
        for d in shape:
            count *= d
        start = len(data)
        norm = name.endswith("norm.weight")
        for _ in range(count):
            data += bf16(1.0 if norm else rng.gauss(0.0, 0.02))
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [start, len(data)]}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(os.path.join(HERE, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + bytes(data))
    with open(os.path.join(HERE, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
