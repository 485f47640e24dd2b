//! Tensor lists of non-decoder models, derived from their `config.json` with the names
//! transformers saves: Whisper (encoder-decoder speech) and the CLIP text encoder of Stable
//! Diffusion pipelines.

use anyhow::Context;
use serde_json::Value;

use crate::TensorSpec;

fn need(config: &Value, key: &str) -> anyhow::Result<u64> {
    config
        .get(key)
        .and_then(Value::as_u64)
        .with_context(|| format!("config has no integer `{key}`"))
}

fn linear(out: &mut Vec<TensorSpec>, name: &str, rows: u64, cols: u64, bias: bool) {
    out.push(TensorSpec::new(
        format!("{name}.weight"),
        "F32",
        &[rows, cols],
    ));
    if bias {
        out.push(TensorSpec::new(format!("{name}.bias"), "F32", &[rows]));
    }
}

fn norm(out: &mut Vec<TensorSpec>, name: &str, d: u64) {
    out.push(TensorSpec::new(format!("{name}.weight"), "F32", &[d]));
    out.push(TensorSpec::new(format!("{name}.bias"), "F32", &[d]));
}

fn attention(out: &mut Vec<TensorSpec>, name: &str, d: u64) {
    linear(out, &format!("{name}.k_proj"), d, d, false);
    linear(out, &format!("{name}.v_proj"), d, d, true);
    linear(out, &format!("{name}.q_proj"), d, d, true);
    linear(out, &format!("{name}.out_proj"), d, d, true);
}

/// Every tensor of `WhisperForConditionalGeneration` (F32) and the tied pair
/// (`proj_out.weight` shares `model.decoder.embed_tokens.weight`).
pub fn whisper_tensors(config: &Value) -> anyhow::Result<(Vec<TensorSpec>, (String, String))> {
    let d = need(config, "d_model")?;
    let mels = need(config, "num_mel_bins")?;
    let vocab = need(config, "vocab_size")?;
    let (enc_ffn, dec_ffn) = (
        need(config, "encoder_ffn_dim")?,
        need(config, "decoder_ffn_dim")?,
    );
    let mut t = vec![
        TensorSpec::new("model.encoder.conv1.weight", "F32", &[d, mels, 3]),
        TensorSpec::new("model.encoder.conv1.bias", "F32", &[d]),
        TensorSpec::new("model.encoder.conv2.weight", "F32", &[d, d, 3]),
        TensorSpec::new("model.encoder.conv2.bias", "F32", &[d]),
    ];
    let src = need(config, "max_source_positions")?;
    t.push(TensorSpec::new(
        "model.encoder.embed_positions.weight",
        "F32",
        &[src, d],
    ));
    for i in 0..need(config, "encoder_layers")? {
        let p = format!("model.encoder.layers.{i}");
        attention(&mut t, &format!("{p}.self_attn"), d);
        norm(&mut t, &format!("{p}.self_attn_layer_norm"), d);
        linear(&mut t, &format!("{p}.fc1"), enc_ffn, d, true);
        linear(&mut t, &format!("{p}.fc2"), d, enc_ffn, true);
        norm(&mut t, &format!("{p}.final_layer_norm"), d);
    }
    norm(&mut t, "model.encoder.layer_norm", d);
    t.push(TensorSpec::new(
        "model.decoder.embed_tokens.weight",
        "F32",
        &[vocab, d],
    ));
    let tgt = need(config, "max_target_positions")?;
    t.push(TensorSpec::new(
        "model.decoder.embed_positions.weight",
        "F32",
        &[tgt, d],
    ));
    for i in 0..need(config, "decoder_layers")? {
        let p = format!("model.decoder.layers.{i}");
        attention(&mut t, &format!("{p}.self_attn"), d);
        norm(&mut t, &format!("{p}.self_attn_layer_norm"), d);
        attention(&mut t, &format!("{p}.encoder_attn"), d);
        norm(&mut t, &format!("{p}.encoder_attn_layer_norm"), d);
        linear(&mut t, &format!("{p}.fc1"), dec_ffn, d, true);
        linear(&mut t, &format!("{p}.fc2"), d, dec_ffn, true);
        norm(&mut t, &format!("{p}.final_layer_norm"), d);
    }
    norm(&mut t, "model.decoder.layer_norm", d);
    let tied = (
        "proj_out.weight".to_owned(),
        "model.decoder.embed_tokens.weight".to_owned(),
    );
    Ok((t, tied))
}

/// Every tensor of `CLIPTextModel` (F32, plus the I64 `position_ids` buffer), as Stable
/// Diffusion's `text_encoder/` stores it.
pub fn clip_text_tensors(config: &Value) -> anyhow::Result<Vec<TensorSpec>> {
    let d = need(config, "hidden_size")?;
    let ffn = need(config, "intermediate_size")?;
    let mut t = Vec::new();
    let vocab = need(config, "vocab_size")?;
    let pos = need(config, "max_position_embeddings")?;
    t.push(TensorSpec::new(
        "text_model.embeddings.token_embedding.weight",
        "F32",
        &[vocab, d],
    ));
    t.push(TensorSpec::new(
        "text_model.embeddings.position_embedding.weight",
        "F32",
        &[pos, d],
    ));
    // The position-id buffer transformers < 4.31 saved with the weights.
    t.push(TensorSpec::new(
        "text_model.embeddings.position_ids",
        "I64",
        &[1, pos],
    ));
    for i in 0..need(config, "num_hidden_layers")? {
        let p = format!("text_model.encoder.layers.{i}");
        for proj in ["k_proj", "v_proj", "q_proj", "out_proj"] {
            linear(&mut t, &format!("{p}.self_attn.{proj}"), d, d, true);
        }
        norm(&mut t, &format!("{p}.layer_norm1"), d);
        linear(&mut t, &format!("{p}.mlp.fc1"), ffn, d, true);
        linear(&mut t, &format!("{p}.mlp.fc2"), d, ffn, true);
        norm(&mut t, &format!("{p}.layer_norm2"), d);
    }
    norm(&mut t, "text_model.final_layer_norm", d);
    Ok(t)
}

fn conv(out: &mut Vec<TensorSpec>, name: &str, o: u64, i: u64, k: u64) {
    out.push(TensorSpec::new(
        format!("{name}.weight"),
        "F32",
        &[o, i, k, k],
    ));
    out.push(TensorSpec::new(format!("{name}.bias"), "F32", &[o]));
}

fn resnet(out: &mut Vec<TensorSpec>, name: &str, i: u64, o: u64, temb: u64) {
    norm(out, &format!("{name}.norm1"), i);
    conv(out, &format!("{name}.conv1"), o, i, 3);
    linear(out, &format!("{name}.time_emb_proj"), o, temb, true);
    norm(out, &format!("{name}.norm2"), o);
    conv(out, &format!("{name}.conv2"), o, o, 3);
    if i != o {
        conv(out, &format!("{name}.conv_shortcut"), o, i, 1);
    }
}

fn transformer(out: &mut Vec<TensorSpec>, name: &str, c: u64, cross: u64) {
    norm(out, &format!("{name}.norm"), c);
    conv(out, &format!("{name}.proj_in"), c, c, 1);
    let b = format!("{name}.transformer_blocks.0");
    norm(out, &format!("{b}.norm1"), c);
    for (attn, kv, after) in [("attn1", c, "norm2"), ("attn2", cross, "norm3")] {
        linear(out, &format!("{b}.{attn}.to_q"), c, c, false);
        linear(out, &format!("{b}.{attn}.to_k"), c, kv, false);
        linear(out, &format!("{b}.{attn}.to_v"), c, kv, false);
        linear(out, &format!("{b}.{attn}.to_out.0"), c, c, true);
        norm(out, &format!("{b}.{after}"), c);
    }
    linear(out, &format!("{b}.ff.net.0.proj"), c * 8, c, true);
    linear(out, &format!("{b}.ff.net.2"), c, c * 4, true);
    conv(out, &format!("{name}.proj_out"), c, c, 1);
}

/// Every tensor of a Stable Diffusion 1.x `UNet2DConditionModel` (F32) from `unet/config.json`
/// (`block_out_channels`, `layers_per_block`, `cross_attention_dim`, block types; GEGLU
/// feed-forward, 1×1 conv projections), with diffusers' names.
pub fn unet_tensors(config: &Value) -> anyhow::Result<Vec<TensorSpec>> {
    let list = |key: &str| -> anyhow::Result<Vec<Value>> {
        config
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .with_context(|| format!("config has no list `{key}`"))
    };
    let boc: Vec<u64> = list("block_out_channels")?
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let types = |key: &str| -> anyhow::Result<Vec<bool>> {
        Ok(list(key)?
            .iter()
            .map(|t| t.as_str().is_some_and(|s| s.starts_with("CrossAttn")))
            .collect())
    };
    let (down, up) = (types("down_block_types")?, types("up_block_types")?);
    anyhow::ensure!(
        !boc.is_empty() && down.len() == boc.len() && up.len() == boc.len(),
        "block lists of different lengths"
    );
    let layers = need(config, "layers_per_block")?;
    let cross = need(config, "cross_attention_dim")?;
    let (cin, cout) = (need(config, "in_channels")?, need(config, "out_channels")?);
    let n = boc.len();
    let temb = boc[0] * 4;
    let mut t = Vec::new();
    conv(&mut t, "conv_in", boc[0], cin, 3);
    linear(&mut t, "time_embedding.linear_1", temb, boc[0], true);
    linear(&mut t, "time_embedding.linear_2", temb, temb, true);
    let mut out = boc[0];
    for (i, &attn) in down.iter().enumerate() {
        let inp = out;
        out = boc[i];
        for j in 0..layers {
            let p = format!("down_blocks.{i}");
            resnet(
                &mut t,
                &format!("{p}.resnets.{j}"),
                if j == 0 { inp } else { out },
                out,
                temb,
            );
            if attn {
                transformer(&mut t, &format!("{p}.attentions.{j}"), out, cross);
            }
        }
        if i + 1 < n {
            conv(
                &mut t,
                &format!("down_blocks.{i}.downsamplers.0.conv"),
                out,
                out,
                3,
            );
        }
    }
    let mid = boc[n - 1];
    resnet(&mut t, "mid_block.resnets.0", mid, mid, temb);
    transformer(&mut t, "mid_block.attentions.0", mid, cross);
    resnet(&mut t, "mid_block.resnets.1", mid, mid, temb);
    let rev: Vec<u64> = boc.iter().rev().copied().collect();
    let mut prev = rev[0];
    for (i, &attn) in up.iter().enumerate() {
        let o = rev[i];
        let skip_in = rev[(i + 1).min(n - 1)];
        for j in 0..=layers {
            let skip = if j == layers { skip_in } else { o };
            let rin = if j == 0 { prev } else { o };
            let p = format!("up_blocks.{i}");
            resnet(&mut t, &format!("{p}.resnets.{j}"), rin + skip, o, temb);
            if attn {
                transformer(&mut t, &format!("{p}.attentions.{j}"), o, cross);
            }
        }
        if i + 1 < n {
            conv(&mut t, &format!("up_blocks.{i}.upsamplers.0.conv"), o, o, 3);
        }
        prev = o;
    }
    norm(&mut t, "conv_norm_out", boc[0]);
    conv(&mut t, "conv_out", cout, boc[0], 3);
    Ok(t)
}
