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

/// Every tensor of `CLIPTextModel` (F32), as Stable Diffusion's `text_encoder/` stores it.
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
