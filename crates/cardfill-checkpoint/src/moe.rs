//! Mixture of experts: `parameters.active`, the parameters one token uses. The expert
//! tensors are found by name (`….experts.<j>.…`, or fused `….experts.<proj>` with the expert
//! count as first dimension); per MoE layer, only `k` of `E` experts are active
//! (`num_experts_per_tok` of `num_local_experts`/`num_experts`/`n_routed_experts`).

use std::collections::BTreeMap;

use cardfill_facts::{Facts, Source, Value, paths};

use crate::WeightSet;

/// `(E, k, key names)` from `config.json` (or its `text_config`).
fn experts(config: &Value) -> Option<(u64, u64, String)> {
    let find = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            config
                .get(*k)
                .or_else(|| config.get("text_config")?.get(*k))
                .and_then(Value::as_u64)
                .map(|v| (v, (*k).to_owned()))
        })
    };
    let (e, ek) = find(&[
        "num_local_experts",
        "num_experts",
        "n_routed_experts",
        "moe_num_experts",
    ])?;
    let (k, kk) = find(&["num_experts_per_tok", "moe_top_k", "top_k"])?;
    (e > 1 && k >= 1 && k < e).then(|| (e, k, format!("{kk} of {ek}")))
}

/// Whether `config` declares experts (then the counts need tensor names).
pub(crate) fn declares_experts(config: &Value) -> bool {
    experts(config).is_some()
}

/// Active parameters per token: `total` minus the inactive share of each MoE layer's experts.
pub fn active(set: &WeightSet, total: u64, e: u64, k: u64) -> Option<u64> {
    // layer prefix → (experts seen, expert parameters)
    let mut layers: BTreeMap<&str, (std::collections::BTreeSet<u64>, u64)> = BTreeMap::new();
    let mut fused = 0u64;
    for t in &set.tensors {
        let Some(at) = t.name.find(".experts.") else {
            continue;
        };
        let prefix = &t.name[..at];
        let rest = &t.name[at + ".experts.".len()..];
        let idx = rest.split('.').next().and_then(|s| s.parse::<u64>().ok());
        match idx {
            Some(j) => {
                let entry = layers.entry(prefix).or_default();
                entry.0.insert(j);
                entry.1 += t.numel();
            }
            None if t.shape.first() == Some(&e) => fused += t.numel(),
            None => {}
        }
    }
    if layers.is_empty() && fused == 0 {
        return None;
    }
    let mut inactive = fused / e * (e - k);
    for (seen, params) in layers.values() {
        let n = seen.len() as u64;
        if n > k {
            inactive += params / n * (n - k);
        }
    }
    total.checked_sub(inactive)
}

/// Sets `parameters.active` for a mixture-of-experts model whose `config.json` is `config`.
pub fn record(config: &Value, primary: &WeightSet, facts: &mut Facts) {
    let Some((e, k, keys)) = experts(config) else {
        return;
    };
    let total = facts
        .u64(paths::PARAMETERS_TOTAL)
        .unwrap_or(primary.total());
    if let Some(active) = active(primary, total, e, k) {
        facts.set(
            paths::PARAMETERS_ACTIVE,
            active,
            Source::file(
                "config.json",
                format!(
                    "{keys} ({k} of {e} experts) applied to the expert tensors of {}",
                    primary.origin()
                ),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    #[test]
    fn mixtral_shape_matches_the_reference_formula() {
        // 2 layers, 8 experts, top-2, hidden 8, intermediate 16.
        let mut set = WeightSet::default();
        for l in 0..2 {
            set.tensors.push(Tensor {
                name: format!("model.layers.{l}.block_sparse_moe.gate.weight"),
                dtype: "BF16".into(),
                shape: vec![8, 8],
            });
            for j in 0..8 {
                for w in ["w1", "w2", "w3"] {
                    set.tensors.push(Tensor {
                        name: format!("model.layers.{l}.block_sparse_moe.experts.{j}.{w}.weight"),
                        dtype: "BF16".into(),
                        shape: vec![16, 8],
                    });
                }
            }
        }
        let total: u64 = set.tensors.iter().map(Tensor::numel).sum();
        assert_eq!(active(&set, total, 8, 2), Some(total - 2 * 6 * 3 * 8 * 16));
    }
}
