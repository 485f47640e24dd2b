//! Facts → the template's variables and the front matter's keys, in one place.
//!
//! Variable names are huggingface_hub's (`model_specs`, `hours_used`, ...). A variable is
//! present only when the facts it needs are known; the template then shows its placeholder.

use std::collections::BTreeMap;

use cardfill_facts::{
    Facts, Value, human_bytes, human_count, human_hours, paths, thousands, three_significant,
    trimmed,
};
use serde_json::{Map, json};

/// What the facts give the card.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variables {
    /// Template variable → its text (Markdown; several lines for the block variables).
    pub body: BTreeMap<&'static str, String>,
    /// Front matter keys cardfill sets, in the order it appends them.
    pub front: Vec<FrontKey>,
}

/// One front matter key cardfill sets.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontKey {
    /// The key, e.g. `base_model`.
    pub key: &'static str,
    /// Its value.
    pub value: Value,
    /// Where the value came from (readable provenance).
    pub source: String,
}

/// The facts as template variables and front matter keys.
pub fn variables(facts: &Facts) -> Variables {
    let mut body = BTreeMap::new();
    let mut put = |name: &'static str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
            body.insert(name, v);
        }
    };
    put("model_id", facts.str(paths::MODEL_NAME).map(str::to_owned));
    put("model_type", model_type(facts));
    put("base_model", base_model(facts));
    put("license", license(facts));
    put(
        "language",
        facts.value(paths::MODEL_LANGUAGE).and_then(joined),
    );
    put("model_specs", model_specs(facts));
    put("speeds_sizes_times", speeds_sizes_times(facts));
    put(
        "training_regime",
        facts.str(paths::TRAINING_REGIME).map(str::to_owned),
    );
    let hw = hardware_type(facts);
    put("hardware_type", hw.clone());
    put("hardware", hw);
    put("hours_used", hours_used(facts));
    put(
        "cloud_provider",
        facts.str(paths::CARBON_PROVIDER).map(provider_name),
    );
    put("cloud_region", cloud_region(facts));
    put("co2_emitted", co2_emitted(facts));
    put(
        "co2_market_based",
        facts.f64(paths::CARBON_CO2_MARKET_GRAMS).map(|g| {
            format!(
                "{} ({} g/kWh market-based intensity, given with --market-intensity; the location-based figure above is the headline)",
                co2_text(g),
                trimmed(facts.f64(paths::CARBON_MARKET_INTENSITY).unwrap_or_default(), 1)
            )
        }),
    );
    put(
        "co2_embodied",
        facts.f64(paths::CARBON_EMBODIED_GRAMS).map(|g| {
            format!(
                "{} (manufacture of the GPUs, amortised; not included above: {})",
                co2_text(g),
                facts.str(paths::CARBON_EMBODIED_METHOD).unwrap_or_default()
            )
        }),
    );
    put("compute_infrastructure", compute_infrastructure(facts));
    put("hardware_requirements", hardware_requirements(facts));
    put("software", software(facts));
    put("training_hyperparameters", training_hyperparameters(facts));
    put("training_results", training_results(facts));
    put(
        "training_figure",
        crate::figure::figure_panels(facts).map(|(loss, power)| {
            let (alt, shows) = match (loss, power) {
                (true, false) => (
                    "Loss and learning rate by step",
                    "Training loss (line), validation loss (points) and learning rate by step, \
                     from the trainer's log",
                ),
                (true, true) => (
                    "Loss and learning rate by step; GPU power over time",
                    "Training loss (line), validation loss (points) and learning rate by step, \
                     from the trainer's log; GPU power over time, from the run records",
                ),
                _ => (
                    "GPU power over time",
                    "GPU power over time, from the run records",
                ),
            };
            format!(
                "![{alt}]({})\n\n*{shows}; drawn by cardfill.*",
                crate::figure::FIGURE_FILE
            )
        }),
    );
    put("results", evaluation_results(facts));
    Variables {
        body,
        front: front_keys(facts),
    }
}

/// A non-negative float rounded to a whole number.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn whole(v: f64) -> u64 {
    v.round().max(0.0) as u64
}

fn joined(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => {
            let items: Vec<_> = a.iter().filter_map(Value::as_str).collect();
            (!items.is_empty()).then(|| items.join(", "))
        }
        _ => None,
    }
}

fn hub_link(id: &str) -> String {
    format!("[{id}](https://huggingface.co/{id})")
}

fn model_type(f: &Facts) -> Option<String> {
    let mt = f.str(paths::MODEL_MODEL_TYPE);
    let arch = f.str(paths::MODEL_ARCHITECTURE);
    let adapter = f.value(paths::MODEL_ADAPTER).and_then(Value::as_object);
    let base = match (mt, arch) {
        (Some(m), Some(a)) if m == a => Some(m.to_owned()),
        (Some(m), Some(a)) => Some(format!("{m} ({a})")),
        (Some(m), None) => Some(m.to_owned()),
        (None, Some(a)) => Some(a.to_owned()),
        (None, None) => None,
    };
    match adapter {
        Some(a) => {
            let kind = a.get("type").and_then(Value::as_str).unwrap_or("PEFT");
            let mut s = format!("{kind} adapter (PEFT)");
            if let Some(t) = a.get("task_type").and_then(Value::as_str) {
                s.push_str(&format!(", task {t}"));
            }
            if let Some(b) = base {
                s.push_str(&format!(", for {b}"));
            }
            Some(s)
        }
        None => base,
    }
}

fn base_model(f: &Facts) -> Option<String> {
    let v = f.value(paths::MODEL_BASE_MODEL)?;
    let ids: Vec<&str> = match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    if ids.is_empty() {
        return None;
    }
    let mut s = ids
        .iter()
        .map(|i| hub_link(i))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(rel) = f.str(paths::MODEL_BASE_MODEL_RELATION) {
        s.push_str(&format!(" ({rel})"));
    }
    Some(s)
}

fn license(f: &Facts) -> Option<String> {
    let id = f.str(paths::MODEL_LICENSE)?;
    match (
        f.str(paths::MODEL_LICENSE_NAME),
        f.str(paths::MODEL_LICENSE_LINK),
    ) {
        (Some(n), Some(l)) => Some(format!("[{n}]({l})")),
        (Some(n), None) => Some(n.to_owned()),
        (None, Some(l)) => Some(format!("[{id}]({l})")),
        (None, None) => Some(id.to_owned()),
    }
}

fn counts(v: &Value) -> Vec<(String, u64)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                .collect()
        })
        .unwrap_or_default()
}

/// What a PEFT adapter's count is: its own parameters, trainable, on a base whose count is
/// known from the cache or the training record ("1.79k trainable adapter params on a
/// 107k-param base (1.65%)"; the share is PEFT's: trainable / all).
fn adapter_parameters(f: &Facts) -> Option<String> {
    f.value(paths::MODEL_ADAPTER)?;
    let total = f.u64(paths::PARAMETERS_TOTAL);
    let trainable = f.u64(paths::PARAMETERS_TRAINABLE).or(total)?;
    // A training record counts the whole model (base + adapter) in `parameters.total`.
    let base = f
        .u64(paths::PARAMETERS_BASE)
        .or_else(|| total.filter(|t| *t > trainable).map(|t| t - trainable));
    Some(match base {
        Some(base) => {
            let all = base + trainable;
            #[allow(clippy::cast_precision_loss)]
            let share = 100.0 * trainable as f64 / all as f64;
            format!(
                "- **Parameters:** {} trainable adapter params on a {}-param base ({}%; {} of {})",
                human_count(trainable),
                human_count(base),
                three_significant(share),
                thousands(trainable),
                thousands(all)
            )
        }
        None => format!(
            "- **Parameters:** {} trainable adapter params ({}); the base model's count is not \
             known here (its weights are not in the local cache)",
            human_count(trainable),
            thousands(trainable)
        ),
    })
}

fn model_specs(f: &Facts) -> Option<String> {
    let mut lines = Vec::new();
    match (
        f.str(paths::MODEL_ARCHITECTURE),
        f.str(paths::MODEL_MODEL_TYPE),
    ) {
        (Some(a), Some(m)) => lines.push(format!("- **Architecture:** {a} (`{m}`)")),
        (Some(a), None) => lines.push(format!("- **Architecture:** {a}")),
        (None, Some(m)) => lines.push(format!("- **Architecture:** `{m}`")),
        (None, None) => {}
    }
    let adapter_line = adapter_parameters(f);
    let counted: &[(&str, &str, &str)] = if adapter_line.is_some() {
        &[(paths::PARAMETERS_ACTIVE, "Active parameters per token", "")]
    } else {
        &[
            (paths::PARAMETERS_TOTAL, "Parameters", " params"),
            (paths::PARAMETERS_ACTIVE, "Active parameters per token", ""),
            (paths::PARAMETERS_TRAINABLE, "Trainable parameters", ""),
        ]
    };
    lines.extend(adapter_line);
    for &(path, label, unit) in counted {
        if let Some(n) = f.u64(path) {
            lines.push(format!(
                "- **{label}:** {}{unit} ({})",
                human_count(n),
                thousands(n)
            ));
        }
    }
    if let Some(by) = f.value(paths::PARAMETERS_BY_DTYPE) {
        let parts: Vec<_> = counts(by)
            .into_iter()
            .map(|(d, n)| format!("{d} {}", thousands(n)))
            .collect();
        if !parts.is_empty() {
            lines.push(format!("- **Tensor types:** {}", parts.join(", ")));
        }
    }
    if let Some(c) = f.value(paths::PARAMETERS_COMPONENTS) {
        let parts: Vec<_> = counts(c)
            .into_iter()
            .map(|(k, n)| format!("{k} {}", human_count(n)))
            .collect();
        if !parts.is_empty() {
            lines.push(format!("- **Components:** {}", parts.join(", ")));
        }
    }
    let mut dims = Vec::new();
    let dim = |path: &str, what: &str| f.u64(path).map(|n| format!("{what} {n}"));
    dims.extend(dim(paths::MODEL_HIDDEN_SIZE, "hidden size"));
    dims.extend(
        f.u64(paths::MODEL_NUM_LAYERS)
            .map(|n| format!("{n} layers")),
    );
    if let Some(h) = f.u64(paths::MODEL_NUM_ATTENTION_HEADS) {
        match f.u64(paths::MODEL_NUM_KV_HEADS) {
            Some(kv) if kv != h => dims.push(format!("{h} attention heads ({kv} key/value heads)")),
            _ => dims.push(format!("{h} attention heads")),
        }
    }
    dims.extend(dim(paths::MODEL_HEAD_DIM, "head dimension"));
    dims.extend(dim(paths::MODEL_INTERMEDIATE_SIZE, "intermediate size"));
    dims.extend(dim(paths::MODEL_VOCAB_SIZE, "vocabulary"));
    dims.extend(
        f.u64(paths::MODEL_CONTEXT_LENGTH)
            .map(|n| format!("context {n} tokens")),
    );
    if f.bool(paths::MODEL_TIED_EMBEDDINGS) == Some(true) {
        dims.push("tied embeddings".to_owned());
    }
    if !dims.is_empty() {
        lines.push(format!("- **Dimensions:** {}", dims.join(", ")));
    }
    if let Some(e) = f.u64(paths::MODEL_NUM_EXPERTS) {
        let mut s = format!("- **Experts:** {e} per layer");
        if let Some(k) = f.u64(paths::MODEL_EXPERTS_PER_TOKEN) {
            s.push_str(&format!(", {k} active per token"));
        }
        lines.push(s);
    }
    if let Some(d) = f.str(paths::MODEL_DTYPE) {
        lines.push(format!("- **Config dtype:** {d}"));
    }
    if let Some(q) = f
        .value(paths::CHECKPOINT_QUANTIZATION)
        .and_then(Value::as_object)
    {
        let parts: Vec<_> = q
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k} {s}"),
                other => format!("{k} {other}"),
            })
            .collect();
        lines.push(format!("- **Quantization:** {}", parts.join(", ")));
    }
    // A GGUF file that is the checkpoint (not an alternative copy): its packing.
    if f.str(paths::CHECKPOINT_FORMAT)
        .is_some_and(|fmt| fmt.starts_with("gguf"))
        && let Some(g) = f.value(paths::CHECKPOINT_GGUF).and_then(Value::as_object)
    {
        let mut parts = Vec::new();
        if let Some(v) = g.get("version") {
            parts.push(format!("version {v}"));
        }
        if let Some(t) = g.get("file_type") {
            parts.push(format!("file type {t}"));
        }
        if let Some(b) = g.get("bytes_per_parameter").and_then(Value::as_f64) {
            parts.push(format!("{} bytes per parameter", trimmed(b, 3)));
        }
        if !parts.is_empty() {
            lines.push(format!("- **GGUF:** {}", parts.join(", ")));
        }
    }
    if let Some(a) = f.value(paths::MODEL_ADAPTER).and_then(Value::as_object) {
        let mut parts = Vec::new();
        if let Some(t) = a.get("type").and_then(Value::as_str) {
            parts.push(t.to_owned());
        }
        for (k, label) in [("r", "r"), ("alpha", "alpha")] {
            if let Some(v) = a.get(k).filter(|v| v.is_number()) {
                parts.push(format!("{label} {v}"));
            }
        }
        if let Some(t) = a.get("target_modules").and_then(joined) {
            parts.push(format!("target modules {t}"));
        }
        if !parts.is_empty() {
            lines.push(format!("- **Adapter:** {}", parts.join(", ")));
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn speeds_sizes_times(f: &Facts) -> Option<String> {
    let mut lines = Vec::new();
    let files: Vec<&str> = f
        .value(paths::CHECKPOINT_FILES)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(bytes) = f.u64(paths::CHECKPOINT_BYTES) {
        let mut s = format!(
            "- **Checkpoint size:** {} ({} bytes)",
            human_bytes(bytes),
            thousands(bytes)
        );
        if !files.is_empty() {
            let format = f.str(paths::CHECKPOINT_FORMAT).unwrap_or("weight");
            let noun = if files.len() == 1 { "file" } else { "files" };
            s.push_str(&format!(" in {} {format} {noun}", files.len()));
        }
        lines.push(s);
    }
    if !files.is_empty() {
        let shown: Vec<_> = files.iter().take(3).map(|x| format!("`{x}`")).collect();
        let more = files.len().saturating_sub(3);
        let mut s = format!("- **Files:** {}", shown.join(", "));
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
        lines.push(s);
    }
    if let Some(rt) = f
        .f64(paths::TRAINING_RUNTIME_S)
        .filter(|r| r.is_finite() && *r >= 0.0)
    {
        let exact = if rt >= 3600.0 {
            format!("{} s, ", thousands(whole(rt)))
        } else {
            String::new()
        };
        lines.push(format!(
            "- **Training runtime:** {} ({exact}trainer)",
            rounded_duration(rt)
        ));
    }
    if let (Some(s), Some(e)) = (f.str(paths::RUN_START), f.str(paths::RUN_END)) {
        lines.push(format!("- **Run:** {s} to {e}"));
    }
    let mut tp = Vec::new();
    if let Some(v) = f.f64(paths::TRAINING_SAMPLES_PER_SECOND) {
        tp.push(format!("{} samples/s", three_significant(v)));
    }
    if let Some(v) = f.f64(paths::TRAINING_STEPS_PER_SECOND) {
        tp.push(format!("{} steps/s", three_significant(v)));
    }
    if !tp.is_empty() {
        lines.push(format!("- **Throughput:** {}", tp.join(", ")));
    }
    let mut progress = Vec::new();
    if let Some(s) = f.u64(paths::TRAINING_STEPS) {
        progress.push(format!("{} steps", thousands(s)));
    }
    if let Some(e) = f.f64(paths::TRAINING_EPOCHS) {
        progress.push(format!("{} epochs", trimmed(e, 2)));
    }
    if !progress.is_empty() {
        lines.push(format!("- **Training length:** {}", progress.join(", ")));
    }
    if let Some(fl) = f.f64(paths::TRAINING_FLOS) {
        lines.push(format!("- **Total FLOs:** {fl:.3e}"));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// GPUs grouped by name: `8 × NVIDIA H100 80GB HBM3`.
fn gpu_groups(f: &Facts) -> Vec<(usize, String, &Map<String, Value>)> {
    let mut groups: Vec<(usize, String, &Map<String, Value>)> = Vec::new();
    if let Some(gpus) = f.value(paths::HARDWARE_GPUS).and_then(Value::as_array) {
        for g in gpus.iter().filter_map(Value::as_object) {
            let Some(name) = g.get("name").and_then(Value::as_str) else {
                continue;
            };
            match groups.iter_mut().find(|(_, n, _)| n == name) {
                Some(entry) => entry.0 += 1,
                None => groups.push((1, name.to_owned(), g)),
            }
        }
    }
    groups
}

fn hardware_type(f: &Facts) -> Option<String> {
    let groups = gpu_groups(f);
    if !groups.is_empty() {
        let listed: usize = groups.iter().map(|g| g.0).sum();
        let count = f
            .u64(paths::HARDWARE_GPU_COUNT)
            .map_or(listed, |c| c as usize);
        if groups.len() == 1 {
            return Some(format!("{count} × {}", groups[0].1));
        }
        return Some(
            groups
                .iter()
                .map(|(n, name, _)| format!("{n} × {name}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(n) = f.u64(paths::HARDWARE_GPU_COUNT).filter(|&n| n > 0) {
        return Some(format!("{n} × GPU"));
    }
    f.str(paths::HARDWARE_CPU).map(|c| format!("CPU: {c}"))
}

fn hours_used(f: &Facts) -> Option<String> {
    let h = f
        .f64(paths::RUN_HOURS)
        .filter(|h| h.is_finite() && *h >= 0.0)?;
    // Under an hour, "0 hours" says nothing: minutes or seconds instead.
    let mut s = if h >= 1.0 {
        let unit = if (h - 1.0).abs() < f64::EPSILON {
            "hour"
        } else {
            "hours"
        };
        format!("{} {unit} wall clock", human_hours(h))
    } else {
        format!("{} wall clock", duration(h * 3600.0))
    };
    if let Some(g) = f
        .f64(paths::RUN_GPU_HOURS)
        .filter(|g| g.is_finite() && *g >= 0.0)
    {
        if g >= 0.1 {
            s.push_str(&format!(" ({} GPU-hours)", human_hours(g)));
        } else {
            s.push_str(&format!(" ({} of GPU time)", duration(g * 3600.0)));
        }
    }
    Some(s)
}

/// A duration for people: seconds, minutes, hours or days, never "0 hours"; the exact
/// figure is kept beside rounded hours and days ("7 s", "42 min", "3.2 h (11,520 s)").
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 3600.0 {
        rounded_duration(s)
    } else {
        format!("{} ({} s)", rounded_duration(s), thousands(whole(s)))
    }
}

/// [`duration`] without the exact figure.
fn rounded_duration(s: f64) -> String {
    if s < 60.0 {
        let shown = if s < 10.0 {
            trimmed(s, 1)
        } else {
            trimmed(s, 0)
        };
        format!("{shown} s")
    } else if s < 3600.0 {
        format!("{} min", trimmed(s / 60.0, 0))
    } else if s < 48.0 * 3600.0 {
        format!("{} h", trimmed(s / 3600.0, 1))
    } else {
        format!("{} days", trimmed(s / 86_400.0, 1))
    }
}

fn provider_name(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "aws" => "AWS".to_owned(),
        "gcp" | "google" => "Google Cloud".to_owned(),
        "azure" => "Azure".to_owned(),
        _ => p.to_owned(),
    }
}

fn region_name(region: &str) -> &str {
    region.split_once(':').map_or(region, |(_, r)| r)
}

fn cloud_region(f: &Facts) -> Option<String> {
    let r = f.str(paths::CARBON_REGION);
    let loc = f.str(paths::CARBON_LOCATION);
    match (r, loc) {
        (Some(r), Some(l)) => Some(format!("{} ({l})", region_name(r))),
        (Some(r), None) => Some(region_name(r).to_owned()),
        (None, Some(l)) => Some(l.to_owned()),
        (None, None) => None,
    }
}

/// Grams of CO2eq, readable: `11.3 kg CO2eq`.
pub fn co2_text(grams: f64) -> String {
    if grams >= 1e6 {
        format!("{} t CO2eq", three_significant(grams / 1e6))
    } else if grams >= 1e3 {
        format!("{} kg CO2eq", three_significant(grams / 1e3))
    } else {
        format!("{} g CO2eq", three_significant(grams))
    }
}

fn co2_emitted(f: &Facts) -> Option<String> {
    let g = f.f64(paths::CARBON_CO2_GRAMS)?;
    let mut s = co2_text(g);
    let mut working = Vec::new();
    let pue_default = f
        .get(paths::CARBON_PUE)
        .is_some_and(|p| matches!(p.source, cardfill_facts::Source::Default { .. }));
    let facility = f.f64(paths::CARBON_FACILITY_ENERGY_KWH);
    let given_facility = f.str(paths::CARBON_ENERGY_SCOPE) == Some("facility");
    match (
        f.f64(paths::CARBON_ENERGY_KWH),
        facility,
        f.f64(paths::CARBON_INTENSITY),
    ) {
        (_, Some(fe), Some(i)) if given_facility => working.push(format!(
            "{} kWh facility energy × {} g/kWh",
            three_significant(fe),
            trimmed(i, 0)
        )),
        (Some(e), fe, Some(i)) => {
            let pue = f
                .f64(paths::CARBON_PUE)
                .map(|p| {
                    let default = if pue_default { " (default)" } else { "" };
                    match fe {
                        Some(fe) => format!(
                            " IT × PUE {p:.2}{default} = {} kWh facility",
                            three_significant(fe)
                        ),
                        None => format!(" × PUE {p:.2}{default}"),
                    }
                })
                .unwrap_or_default();
            working.push(format!(
                "{} kWh{pue} × {} g/kWh",
                three_significant(e),
                trimmed(i, 0)
            ));
        }
        _ => {}
    }
    let mut place = Vec::new();
    if let Some(p) = f.str(paths::CARBON_PROVIDER) {
        place.push(provider_name(p));
    }
    if let Some(r) = f.str(paths::CARBON_REGION) {
        place.push(region_name(r).to_owned());
    }
    let mut where_ = place.join(" ");
    if let Some(src) = f.str(paths::CARBON_INTENSITY_SOURCE) {
        if where_.is_empty() {
            where_ = src.to_owned();
        } else {
            where_ = format!("{where_}, {src}");
        }
    }
    if !where_.is_empty() {
        working.push(where_);
    }
    if let Some(m) = f.str(paths::CARBON_METHOD) {
        working.push(format!("energy {m}"));
    }
    if !working.is_empty() {
        s.push_str(&format!(" ({})", working.join("; ")));
    }
    Some(s)
}

fn compute_infrastructure(f: &Facts) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(n) = f.u64(paths::RUN_NODES) {
        parts.push(format!("{n} {}", if n == 1 { "node" } else { "nodes" }));
    }
    let gpus = f.u64(paths::HARDWARE_GPU_COUNT).or_else(|| {
        let n: usize = gpu_groups(f).iter().map(|g| g.0).sum();
        (n > 0).then_some(n as u64)
    });
    if let Some(g) = gpus {
        parts.push(format!("{g} {}", if g == 1 { "GPU" } else { "GPUs" }));
    }
    if let Some(d) = f.str(paths::HARDWARE_DRIVER_VERSION) {
        parts.push(format!("NVIDIA driver {d}"));
    }
    if let Some(c) = f.str(paths::HARDWARE_CUDA_VERSION) {
        parts.push(format!("CUDA {c}"));
    }
    // The launch configuration: "DeepSpeed ZeRO-3 with CPU offload, 2 machines × 8 processes".
    let launch = match (
        f.u64(paths::TRAINING_MACHINES),
        f.u64(paths::TRAINING_PROCESSES),
    ) {
        (Some(m), Some(p)) => Some(format!(
            "{m} {} × {} processes",
            if m == 1 { "machine" } else { "machines" },
            p / m.max(1)
        )),
        (None, Some(p)) => Some(format!("{p} processes")),
        _ => None,
    };
    match (f.str(paths::TRAINING_DISTRIBUTED), launch) {
        (Some(d), Some(l)) => parts.push(format!("{d}, {l}")),
        (Some(d), None) => parts.push(d.to_owned()),
        (None, Some(l)) => parts.push(l),
        (None, None) => {}
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn hardware_requirements(f: &Facts) -> Option<String> {
    let mut lines = Vec::new();
    for (n, name, g) in gpu_groups(f) {
        let mut details = Vec::new();
        if let Some(m) = g.get("memory_bytes").and_then(Value::as_u64) {
            details.push(human_bytes(m));
        }
        if let Some(p) = g.get("power_limit_w").and_then(Value::as_f64) {
            details.push(format!("{} W power limit", trimmed(p, 0)));
        }
        let d = if details.is_empty() {
            String::new()
        } else {
            format!(" ({})", details.join(", "))
        };
        lines.push(format!("- **GPU:** {n} × {name}{d}"));
    }
    if let Some(cpu) = f.str(paths::HARDWARE_CPU) {
        match f.u64(paths::HARDWARE_CPU_CORES) {
            Some(c) => lines.push(format!("- **CPU:** {cpu} ({c} cores)")),
            None => lines.push(format!("- **CPU:** {cpu}")),
        }
    }
    if let Some(r) = f.u64(paths::HARDWARE_RAM_BYTES) {
        lines.push(format!("- **RAM:** {}", human_bytes(r)));
    }
    if let Some(os) = f.str(paths::HARDWARE_OS) {
        lines.push(format!("- **OS:** {os}"));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn software(f: &Facts) -> Option<String> {
    let sw = f.value(paths::TRAINING_SOFTWARE)?.as_object()?;
    let mut lines: Vec<String> = sw
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("- {k} {s}"),
            other => format!("- {k} {other}"),
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    lines.push(format!(
        "- cardfill {} (wrote the facts in this card)",
        env!("CARGO_PKG_VERSION")
    ));
    Some(lines.join("\n"))
}

/// Drops the variables whose content the card already has in text cardfill does not own
/// (the Trainer's, PEFT's or sentence-transformers' own card): its framework versions list,
/// its hyperparameter list, its training results table. A second list would only disagree.
pub fn leave_to_card(card: &str, body: &mut BTreeMap<&'static str, String>) {
    // The card's own text: cardfill's blocks removed.
    let mut own = String::new();
    let mut inside = false;
    for line in card.lines() {
        let t = line.trim();
        if t.starts_with("<!-- cardfill:begin ") {
            inside = true;
        } else if t.starts_with("<!-- cardfill:end ") {
            inside = false;
        } else if !inside {
            own.push_str(&t.to_ascii_lowercase());
            own.push('\n');
        }
    }
    let heading = |title: &str| {
        own.lines()
            .any(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == title)
    };
    if heading("framework versions") {
        body.remove("software");
    }
    if own.contains("the following hyperparameters were used during training") {
        body.remove("training_hyperparameters");
    }
    if own.lines().any(|l| l.starts_with("| training loss")) {
        body.remove("training_results");
    }
}

/// `training.hyperparameters`: batch sizes first (per device, accumulation, effective total),
/// then every other value as `TrainingArguments` names it.
fn training_hyperparameters(f: &Facts) -> Option<String> {
    let hp = f.value(paths::TRAINING_HYPERPARAMETERS)?.as_object()?;
    let num = |k: &str| hp.get(k).and_then(Value::as_u64);
    let mut lines = Vec::new();
    if let Some(b) = num("per_device_train_batch_size") {
        let mut s = format!("- **Batch size:** {b} per device");
        if let Some(a) = num("gradient_accumulation_steps") {
            s.push_str(&format!(" × {a} gradient accumulation steps"));
        }
        if let Some(t) = num("total_train_batch_size") {
            s.push_str(&format!(" = {t} effective (all devices)"));
        }
        lines.push(s);
    }
    for (k, v) in hp {
        if matches!(
            k.as_str(),
            "per_device_train_batch_size"
                | "gradient_accumulation_steps"
                | "total_train_batch_size"
        ) {
            continue;
        }
        let shown = match v {
            Value::String(s) => s.clone(),
            Value::Null => "None".to_owned(),
            other => other.to_string(),
        };
        lines.push(format!("- `{k}`: {shown}"));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn metric_title(name: &str) -> String {
    let mut out = String::new();
    for (i, w) in name.split('_').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut c = w.chars();
        if let Some(first) = c.next() {
            out.extend(first.to_uppercase());
            out.push_str(c.as_str());
        }
    }
    out
}

fn four(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.4}"))
}

/// The Trainer's own "Training results" table from `training.log`: at each evaluation, the
/// last training loss logged before it, the epoch, the step and the evaluation metrics.
fn training_results(f: &Facts) -> Option<String> {
    let log = f.value(paths::TRAINING_LOG)?.as_array()?;
    let mut metrics: Vec<String> = Vec::new();
    for e in log.iter().filter_map(Value::as_object) {
        for k in e.keys() {
            if let Some(m) = k.strip_prefix("eval_")
                && !metrics.iter().any(|x| x == m)
            {
                metrics.push(m.to_owned());
            }
        }
    }
    if metrics.is_empty() {
        return None;
    }
    let title = |m: &str| {
        if m == "loss" {
            "Validation Loss".to_owned()
        } else {
            metric_title(m)
        }
    };
    let mut head = vec!["Training Loss".to_owned(), "Epoch".into(), "Step".into()];
    head.extend(metrics.iter().map(|m| title(m)));
    let mut lines = vec![
        format!("| {} |", head.join(" | ")),
        format!("|{}", head.iter().map(|_| ":---:|").collect::<String>()),
    ];
    let mut last_loss: Option<&Value> = None;
    for e in log.iter().filter_map(Value::as_object) {
        if let Some(l) = e.get("loss") {
            last_loss = Some(l);
        }
        if !e.keys().any(|k| k.starts_with("eval_")) {
            continue;
        }
        let mut row = vec![
            last_loss.map_or_else(|| "No log".to_owned(), four),
            e.get("epoch")
                .and_then(Value::as_f64)
                .map_or_else(|| "-".to_owned(), |x| trimmed(x, 4)),
            e.get("step")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".to_owned(), |x| x.to_string()),
        ];
        row.extend(metrics.iter().map(|m| {
            e.get(&format!("eval_{m}"))
                .map_or_else(|| "-".to_owned(), four)
        }));
        lines.push(format!("| {} |", row.join(" | ")));
    }
    Some(lines.join("\n"))
}

/// A result entry the Hub's `model-index` can hold: task, Hub dataset and metric.
fn complete(r: &Value) -> bool {
    r.get("task").is_some_and(Value::is_string)
        && r.get("dataset")
            .and_then(|d| d.get("id"))
            .is_some_and(Value::is_string)
        && r.get("metric").is_some_and(Value::is_string)
        && r.get("value").is_some_and(Value::is_number)
}

/// `evaluation.results` as a table: every entry, complete or not.
fn evaluation_results(f: &Facts) -> Option<String> {
    let results = f.value(paths::EVALUATION_RESULTS)?.as_array()?;
    let mut lines = vec![
        "| Task | Dataset | Metric | Value | Step |".to_owned(),
        "|:---|:---|:---|---:|---:|".to_owned(),
    ];
    for r in results {
        let task = r
            .get("name")
            .or_else(|| r.get("task"))
            .and_then(Value::as_str)
            .unwrap_or("-");
        let dataset = match r.get("dataset").filter(|d| d.is_object()) {
            Some(d) => {
                let id = d.get("id").and_then(Value::as_str).unwrap_or("-");
                let mut s = format!("[{id}](https://huggingface.co/datasets/{id})");
                for k in ["config", "split"] {
                    if let Some(x) = d.get(k).and_then(Value::as_str) {
                        s.push_str(&format!(" `{x}`"));
                    }
                }
                s
            }
            None => "evaluation set".to_owned(),
        };
        let metric = r.get("metric").and_then(Value::as_str).unwrap_or("-");
        let value = r
            .get("value")
            .and_then(Value::as_f64)
            .map_or_else(|| "-".to_owned(), |v| trimmed(v, 4));
        let step = r
            .get("step")
            .and_then(Value::as_u64)
            .map_or_else(|| "-".to_owned(), |s| s.to_string());
        lines.push(format!(
            "| {task} | {dataset} | {metric} | {value} | {step} |"
        ));
    }
    (lines.len() > 2).then(|| lines.join("\n"))
}

/// `model-index` from the complete entries of `evaluation.results` (the Hub requires task,
/// dataset and metric), grouped by task and dataset.
fn model_index(f: &Facts) -> Option<FrontKey> {
    let results = f.value(paths::EVALUATION_RESULTS)?.as_array()?;
    let mut groups: Vec<(Value, Value, Vec<Value>)> = Vec::new();
    for r in results.iter().filter(|r| complete(r)) {
        let task = json!({"type": r["task"]});
        let d = &r["dataset"];
        let mut ds = Map::new();
        ds.insert("name".into(), d["id"].clone());
        ds.insert("type".into(), d["id"].clone());
        for k in ["config", "split"] {
            if let Some(x) = d.get(k).filter(|x| x.is_string()) {
                ds.insert(k.into(), x.clone());
            }
        }
        let ds = Value::Object(ds);
        let metric = json!({"type": r["metric"], "value": r["value"]});
        match groups.iter_mut().find(|(t, d, _)| *t == task && *d == ds) {
            Some(g) => g.2.push(metric),
            None => groups.push((task, ds, vec![metric])),
        }
    }
    if groups.is_empty() {
        return None;
    }
    let results: Vec<Value> = groups
        .into_iter()
        .map(|(task, dataset, metrics)| json!({"task": task, "dataset": dataset, "metrics": metrics}))
        .collect();
    let name = f.str(paths::MODEL_NAME).unwrap_or("model");
    Some(FrontKey {
        key: "model-index",
        value: json!([{"name": name, "results": results}]),
        source: source(f, paths::EVALUATION_RESULTS),
    })
}

fn source(f: &Facts, path: &str) -> String {
    f.get(path)
        .map(|fact| fact.source.to_string())
        .unwrap_or_default()
}

fn front_keys(f: &Facts) -> Vec<FrontKey> {
    let mut out = Vec::new();
    let mut push = |key: &'static str, path: &str| {
        if let Some(v) = f.value(path)
            && matches!(v, Value::String(_) | Value::Array(_))
        {
            out.push(FrontKey {
                key,
                value: v.clone(),
                source: source(f, path),
            });
        }
    };
    push("base_model", paths::MODEL_BASE_MODEL);
    push("base_model_relation", paths::MODEL_BASE_MODEL_RELATION);
    push("library_name", paths::MODEL_LIBRARY_NAME);
    push("pipeline_tag", paths::MODEL_PIPELINE_TAG);
    push("license", paths::MODEL_LICENSE);
    if f.str(paths::MODEL_LICENSE) == Some("other") {
        push("license_name", paths::MODEL_LICENSE_NAME);
        push("license_link", paths::MODEL_LICENSE_LINK);
    }
    push("language", paths::MODEL_LANGUAGE);
    if let Some(list) = f.value(paths::TRAINING_DATASETS).and_then(Value::as_array) {
        let ids: Vec<Value> = list
            .iter()
            .filter_map(|d| d.get("id").filter(|i| i.is_string()).cloned())
            .collect();
        if !ids.is_empty() {
            out.push(FrontKey {
                key: "datasets",
                value: Value::Array(ids),
                source: source(f, paths::TRAINING_DATASETS),
            });
        }
    }
    if !out.iter().any(|k| k.key == "library_name")
        && f.contains(paths::MODEL_ARCHITECTURE)
        && !f.contains(paths::MODEL_ADAPTER)
        && f.str(paths::CHECKPOINT_FORMAT) != Some("gguf")
    {
        out.push(FrontKey {
            key: "library_name",
            value: Value::from("transformers"),
            source: "derived: a transformers config.json is present".to_owned(),
        });
    }
    if let Some(co2) = co2_front(f) {
        out.push(co2);
    }
    out.extend(model_index(f));
    out
}

fn co2_front(f: &Facts) -> Option<FrontKey> {
    let grams = f.f64(paths::CARBON_CO2_GRAMS)?;
    let mut m = Map::new();
    let rounded = (grams * 10.0).round() / 10.0;
    #[allow(clippy::cast_possible_truncation)]
    let emissions = if rounded.fract() == 0.0 && rounded.abs() < 1e15 {
        json!(rounded as i64)
    } else {
        json!(rounded)
    };
    m.insert("emissions".into(), emissions);
    let method = f.str(paths::CARBON_METHOD);
    m.insert(
        "source".into(),
        Value::from(match method {
            Some(me) => format!("cardfill ({me})"),
            None => "cardfill".to_owned(),
        }),
    );
    let training_type = f.str(paths::CARBON_TRAINING_TYPE).map_or_else(
        || {
            if f.contains(paths::MODEL_BASE_MODEL) {
                "fine-tuning".to_owned()
            } else {
                "pre-training".to_owned()
            }
        },
        str::to_owned,
    );
    m.insert("training_type".into(), Value::from(training_type));
    let location = f
        .str(paths::CARBON_LOCATION)
        .map(str::to_owned)
        .or_else(|| f.str(paths::CARBON_REGION).map(str::to_owned));
    if let Some(l) = location {
        m.insert("geographical_location".into(), Value::from(l));
    }
    if let Some(h) = hardware_type(f) {
        m.insert("hardware_used".into(), Value::from(h));
    }
    // Extra keys next to the documented ones (the Hub ignores unknown keys).
    let number = |v: f64| {
        #[allow(clippy::cast_possible_truncation)]
        if v.fract() == 0.0 && v.abs() < 1e15 {
            json!(v as i64)
        } else {
            json!(v)
        }
    };
    for (key, path) in [
        ("energy_consumed", paths::CARBON_FACILITY_ENERGY_KWH),
        ("energy_consumed_it", paths::CARBON_ENERGY_KWH),
        ("pue", paths::CARBON_PUE),
        ("grid_intensity", paths::CARBON_INTENSITY),
    ] {
        if let Some(v) = f.f64(path) {
            m.insert(key.into(), number(v));
        }
    }
    if let Some(src) = f.str(paths::CARBON_INTENSITY_SOURCE) {
        m.insert("grid_intensity_source".into(), Value::from(src));
    }
    if let Some(y) = f.u64(paths::CARBON_INTENSITY_YEAR) {
        m.insert("grid_intensity_year".into(), Value::from(y));
    }
    for (key, path) in [
        ("emissions_market_based", paths::CARBON_CO2_MARKET_GRAMS),
        ("emissions_embodied", paths::CARBON_EMBODIED_GRAMS),
    ] {
        if let Some(g) = f.f64(path) {
            m.insert(key.into(), number((g * 10.0).round() / 10.0));
        }
    }
    Some(FrontKey {
        key: "co2_eq_emissions",
        value: Value::Object(m),
        source: source(f, paths::CARBON_CO2_GRAMS),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use cardfill_facts::Source;

    use super::*;

    fn s() -> Source {
        Source::derived("test")
    }

    /// A fully known run: 8 H100s on AWS.
    pub(crate) fn full_facts() -> Facts {
        let mut f = Facts::new();
        f.set(paths::MODEL_ARCHITECTURE, "LlamaForCausalLM", s());
        f.set(paths::MODEL_MODEL_TYPE, "llama", s());
        f.set(paths::MODEL_BASE_MODEL, "meta-llama/Llama-2-7b-hf", s());
        f.set(paths::MODEL_HIDDEN_SIZE, 4096, s());
        f.set(paths::MODEL_NUM_LAYERS, 32, s());
        f.set(paths::MODEL_NUM_ATTENTION_HEADS, 32, s());
        f.set(paths::MODEL_NUM_KV_HEADS, 32, s());
        f.set(paths::MODEL_VOCAB_SIZE, 32000, s());
        f.set(paths::MODEL_CONTEXT_LENGTH, 4096, s());
        f.set(paths::PARAMETERS_TOTAL, 6_738_415_616u64, s());
        f.set(
            paths::PARAMETERS_BY_DTYPE,
            json!({"BF16": 6_738_415_616u64}),
            s(),
        );
        f.set(paths::CHECKPOINT_FORMAT, "safetensors-sharded", s());
        f.set(
            paths::CHECKPOINT_FILES,
            json!([
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]),
            s(),
        );
        f.set(paths::CHECKPOINT_BYTES, 13_476_839_424u64, s());
        f.set(paths::TRAINING_REGIME, "bf16 mixed precision", s());
        f.set(paths::RUN_HOURS, 12.5, s());
        f.set(paths::RUN_GPU_HOURS, 100.0, s());
        f.set(
            paths::HARDWARE_GPUS,
            Value::Array(
                (0..8)
                    .map(|i| json!({"name": "NVIDIA H100 80GB HBM3", "memory_bytes": 85_520_809_984u64, "power_limit_w": 700, "uuid": format!("GPU-{i}")}))
                    .collect(),
            ),
            s(),
        );
        f.set(paths::HARDWARE_GPU_COUNT, 8, s());
        f.set(paths::CARBON_ENERGY_KWH, 37.5, s());
        f.set(paths::CARBON_PUE, 1.1, s());
        f.set(paths::CARBON_INTENSITY, 274.0, s());
        f.set(paths::CARBON_CO2_GRAMS, 11302.5, s());
        f.set(paths::CARBON_REGION, "aws:us-east-1", s());
        f.set(paths::CARBON_PROVIDER, "aws", s());
        f.set(paths::CARBON_LOCATION, "Virginia, United States", s());
        f.set(paths::CARBON_INTENSITY_SOURCE, "EPA eGRID 2022", s());
        f.set(paths::CARBON_METHOD, "measured", s());
        f
    }

    #[test]
    fn card_lines_read_like_the_issues() {
        let v = variables(&full_facts());
        assert_eq!(v.body["hardware_type"], "8 × NVIDIA H100 80GB HBM3");
        assert_eq!(
            v.body["hours_used"],
            "12.5 hours wall clock (100 GPU-hours)"
        );
        assert_eq!(
            v.body["co2_emitted"],
            "11.3 kg CO2eq (37.5 kWh × PUE 1.10 × 274 g/kWh; AWS us-east-1, EPA eGRID 2022; energy measured)"
        );
        insta::assert_snapshot!(v.body["model_specs"], @r"
        - **Architecture:** LlamaForCausalLM (`llama`)
        - **Parameters:** 6.74B params (6,738,415,616)
        - **Tensor types:** BF16 6,738,415,616
        - **Dimensions:** hidden size 4096, 32 layers, 32 attention heads, vocabulary 32000, context 4096 tokens
        ");
        insta::assert_snapshot!(v.body["speeds_sizes_times"], @r"
        - **Checkpoint size:** 12.55 GiB (13,476,839,424 bytes) in 2 safetensors-sharded files
        - **Files:** `model-00001-of-00002.safetensors`, `model-00002-of-00002.safetensors`
        ");
        let keys: Vec<_> = v.front.iter().map(|k| k.key).collect();
        assert_eq!(keys, ["base_model", "library_name", "co2_eq_emissions"]);
        assert_eq!(
            v.front[2].value,
            json!({"emissions": 11302.5, "source": "cardfill (measured)", "training_type": "fine-tuning",
                   "geographical_location": "Virginia, United States", "hardware_used": "8 × NVIDIA H100 80GB HBM3",
                   "energy_consumed_it": 37.5, "pue": 1.1, "grid_intensity": 274,
                   "grid_intensity_source": "EPA eGRID 2022"})
        );
    }

    #[test]
    fn unknown_facts_give_no_variables() {
        let v = variables(&Facts::new());
        assert!(v.body.is_empty());
        assert!(v.front.is_empty());
    }

    #[test]
    fn trainer_facts_read_well() {
        let mut f = Facts::new();
        f.set(paths::TRAINING_RUNTIME_S, 623_384.378_8, s());
        f.set(paths::TRAINING_SAMPLES_PER_SECOND, 41.06, s());
        f.set(paths::TRAINING_STEPS, 100_000, s());
        f.set(
            paths::TRAINING_SOFTWARE,
            json!({"transformers": "4.26.0"}),
            s(),
        );
        let v = variables(&f);
        insta::assert_snapshot!(v.body["speeds_sizes_times"], @r"
        - **Training runtime:** 7.2 days (623,384 s, trainer)
        - **Throughput:** 41.1 samples/s
        - **Training length:** 100,000 steps
        ");
        assert!(v.body["software"].starts_with("- transformers 4.26.0\n- cardfill "));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.7215), "0.7 s");
        assert_eq!(duration(7.0), "7 s");
        assert_eq!(duration(42.0 * 60.0), "42 min");
        assert_eq!(duration(11_520.0), "3.2 h (11,520 s)");
        assert_eq!(duration(5.0 * 86_400.0), "5 days (432,000 s)");
        assert!(!duration(0.0).contains("hours"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(6_738_415_616), "6,738,415,616");
        assert_eq!(thousands(999), "999");
        assert_eq!(co2_text(999.0), "999 g CO2eq");
        assert_eq!(co2_text(2_500_000.0), "2.5 t CO2eq");
    }

    #[test]
    fn compute_infrastructure_names_the_launch_configuration() {
        let mut f = Facts::new();
        f.set(paths::RUN_NODES, 2, s());
        f.set(paths::HARDWARE_GPU_COUNT, 8, s());
        f.set(paths::TRAINING_DISTRIBUTED, "DeepSpeed ZeRO-3", s());
        f.set(paths::TRAINING_MACHINES, 2, s());
        f.set(paths::TRAINING_PROCESSES, 8, s());
        assert_eq!(
            compute_infrastructure(&f).as_deref(),
            Some("2 nodes, 8 GPUs, DeepSpeed ZeRO-3, 2 machines × 4 processes")
        );
    }
}
