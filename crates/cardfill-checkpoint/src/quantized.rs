//! Quantized checkpoints (bitsandbytes 8/4-bit, GPTQ/AWQ, compressed-tensors, MXFP4, FP8):
//! the model's logical parameter count, packed integers unpacked by the pack factor of
//! `quantization_config` and bookkeeping tensors (scales, zero points, absmax, ...) left out.
//! The stored element count goes to `parameters.stored`.

use std::collections::HashSet;

use cardfill_facts::{Facts, Source, Value, paths};

use crate::WeightSet;

/// The `quantization_config` of a parsed `config.json`, if it is an object.
pub(crate) fn quantization_config(config: &Value) -> Option<&Value> {
    config.get("quantization_config").filter(|q| q.is_object())
}

/// Suffixes of bookkeeping tensors that are not model parameters.
const BOOKKEEPING: [&str; 21] = [
    ".SCB",
    ".weight_format",
    ".absmax",
    ".quant_map",
    ".nested_absmax",
    ".nested_quant_map",
    ".qzeros",
    ".scales",
    ".g_idx",
    ".weight_scale",
    ".weight_scale_inv",
    ".weight_zero_point",
    ".weight_g_idx",
    ".weight_shape",
    ".input_scale",
    ".output_scale",
    ".k_scale",
    ".v_scale",
    "_scales",
    ".input_zero_point",
    ".weight_global_scale",
];

fn is_bookkeeping(name: &str) -> bool {
    BOOKKEEPING.iter().any(|s| name.ends_with(s)) || name.contains(".quant_state.")
}

/// The logical count of `set` under quantization method `method` with `bits`.
/// Returns `(logical, what was done)`.
pub fn logical(set: &WeightSet, method: &str, bits: u64) -> (u64, String) {
    let names: HashSet<&str> = set.tensors.iter().map(|t| t.name.as_str()).collect();
    let mut total = 0u64;
    let mut skipped = 0usize;
    let mut unpacked = 0usize;
    for t in &set.tensors {
        let n = t.numel();
        if is_bookkeeping(&t.name) {
            skipped += 1;
            continue;
        }
        let factor = if t.name.ends_with(".qweight") || t.name.ends_with(".weight_packed") {
            // GPTQ/AWQ/compressed-tensors pack 32/bits values into each I32.
            if bits > 0 && bits < 32 { 32 / bits } else { 1 }
        } else if t.dtype == "U8"
            && (t.name.ends_with("_blocks")
                || (method == "bitsandbytes"
                    && bits == 4
                    && (names.contains(format!("{}.absmax", t.name).as_str())
                        || names
                            .iter()
                            .any(|n| n.starts_with(&format!("{}.quant_state.", t.name))))))
        {
            // MXFP4 blocks and bitsandbytes 4-bit weights: two 4-bit values per byte.
            2
        } else {
            1
        };
        if factor > 1 {
            unpacked += 1;
        }
        total += n * factor;
    }
    let how = format!(
        "{method}: {unpacked} packed tensors unpacked, {skipped} bookkeeping tensors left out"
    );
    (total, how)
}

/// Sets `parameters.total` (logical), `parameters.stored`, `checkpoint.quantization` and
/// `model.base_model_relation` when `config` (the parsed `config.json`) declares a quantization.
pub fn record(config: &Value, primary: &WeightSet, facts: &mut Facts) {
    let Some(q) = quantization_config(config) else {
        return;
    };
    let load_8 = q.get("load_in_8bit").and_then(Value::as_bool) == Some(true);
    let load_4 = q.get("load_in_4bit").and_then(Value::as_bool) == Some(true);
    let method = q
        .get("quant_method")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if load_8 || load_4 {
                "bitsandbytes".into()
            } else {
                "unknown".into()
            }
        });
    let bits = q
        .get("bits")
        .and_then(Value::as_u64)
        .or_else(|| {
            // compressed-tensors: config_groups.<g>.weights.num_bits
            q.get("config_groups")?
                .as_object()?
                .values()
                .find_map(|g| g.get("weights")?.get("num_bits")?.as_u64())
        })
        .or(if load_8 {
            Some(8)
        } else if load_4 || method == "mxfp4" {
            Some(4)
        } else if method == "fp8" {
            Some(8)
        } else {
            None
        });
    let (total, how) = logical(primary, &method, bits.unwrap_or(0));
    let stored = primary.total();
    let mut desc = serde_json::Map::new();
    desc.insert("method".into(), method.clone().into());
    if let Some(b) = bits {
        desc.insert("bits".into(), b.into());
    }
    for key in [
        "group_size",
        "bnb_4bit_quant_type",
        "format",
        "version",
        "desc_act",
        "sym",
    ] {
        if let Some(v) = q.get(key).filter(|v| !v.is_null()) {
            desc.insert(key.into(), v.clone());
        }
    }
    let origin = primary.origin();
    facts.set(
        paths::CHECKPOINT_QUANTIZATION,
        Value::Object(desc),
        Source::file("config.json", "quantization_config"),
    );
    facts.set(
        paths::PARAMETERS_TOTAL,
        total,
        Source::file(&origin, format!("{}; logical count: {how}", primary.method)),
    );
    facts.set(
        paths::PARAMETERS_STORED,
        stored,
        Source::file(&origin, format!("{}: Σ stored elements", primary.method)),
    );
    let base = config
        .get("_name_or_path")
        .and_then(Value::as_str)
        .unwrap_or("");
    if is_hub_id_like(base) {
        facts.set(
            paths::MODEL_BASE_MODEL_RELATION,
            "quantized",
            Source::file(
                "config.json",
                "quantization_config and a Hub id in _name_or_path",
            ),
        );
    }
}

/// `org/name` with no path-like parts (the strict rule lives in cardfill-modelconfig).
fn is_hub_id_like(v: &str) -> bool {
    let parts: Vec<&str> = v.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    fn set(tensors: &[(&str, &str, &[u64])]) -> WeightSet {
        let mut s = WeightSet::default();
        for (n, d, shape) in tensors {
            let t = Tensor {
                name: (*n).into(),
                dtype: (*d).into(),
                shape: shape.to_vec(),
            };
            s.push(t);
        }
        s
    }

    #[test]
    fn gptq_unpacks_qweight_and_skips_bookkeeping() {
        // in 4096, out 4096, 4 bits, group 128.
        let s = set(&[
            ("l.qweight", "I32", &[512, 4096]),
            ("l.qzeros", "I32", &[32, 512]),
            ("l.scales", "F16", &[32, 4096]),
            ("l.g_idx", "I32", &[4096]),
            ("norm.weight", "F16", &[4096]),
        ]);
        assert_eq!(logical(&s, "gptq", 4).0, 4096 * 4096 + 4096);
    }

    #[test]
    fn bitsandbytes_8bit_and_4bit() {
        let s = set(&[
            ("l.weight", "I8", &[64, 32]),
            ("l.SCB", "F32", &[64]),
            ("l.weight_format", "U8", &[]),
        ]);
        assert_eq!(logical(&s, "bitsandbytes", 8).0, 2048);
        let s = set(&[
            ("l.weight", "U8", &[1024, 1]),
            ("l.weight.absmax", "F32", &[32]),
            ("l.weight.quant_map", "F32", &[16]),
            ("l.weight.quant_state.bitsandbytes__nf4", "U8", &[100]),
        ]);
        assert_eq!(logical(&s, "bitsandbytes", 4).0, 2048);
        let s = set(&[
            ("e.gate_up_proj_blocks", "U8", &[32, 90, 16]),
            ("e.gate_up_proj_scales", "U8", &[32, 90]),
        ]);
        assert_eq!(logical(&s, "mxfp4", 4).0, 32 * 90 * 32);
    }
}
