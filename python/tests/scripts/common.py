"""What the training scripts share: a tiny Llama in a Hugging Face cache layout, and Hub-style
datasets written as `datasets` leaves them after `load_dataset("tiny-org/tiny-stories")`."""

from __future__ import annotations

import os

VOCAB = 64
SEQ = 16


def tiny_base_model() -> str:
    """Saves a tiny Llama built from a config where the Hub cache keeps
    `tiny-org/tiny-llama`, and returns that snapshot path (what `from_pretrained` of the
    Hub id resolves to)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    snapshot = os.path.join(
        os.environ["HF_HOME"], "hub", "models--tiny-org--tiny-llama", "snapshots", "0" * 40
    )
    if not os.path.exists(os.path.join(snapshot, "config.json")):
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=SEQ * 2,
        )
        LlamaForCausalLM(config).save_pretrained(snapshot)
    return snapshot


def hub_dataset(split: str, rows: int):
    """A `datasets.Dataset` read from the datasets cache of the Hub dataset
    `tiny-org/tiny-stories` (config `default`), as `load_dataset` returns it."""
    import torch
    from datasets import Dataset, DatasetInfo, Features, Sequence, Value
    from datasets.arrow_writer import ArrowWriter

    folder = os.path.join(
        os.environ["HF_HOME"], "datasets", "tiny-org___tiny-stories", "default", "0.0.0", "f" * 16
    )
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"tiny-stories-{split}.arrow")
    features = Features({"input_ids": Sequence(Value("int64")), "labels": Sequence(Value("int64"))})
    if not os.path.exists(path):
        g = torch.Generator().manual_seed(len(split))
        with ArrowWriter(path=path, features=features) as writer:
            for _ in range(rows):
                ids = torch.randint(0, VOCAB, (SEQ,), generator=g).tolist()
                writer.write({"input_ids": ids, "labels": ids})
            writer.finalize()
    info = DatasetInfo(dataset_name="tiny-stories", config_name="default", features=features)
    return Dataset.from_file(path, info=info, split=split)
