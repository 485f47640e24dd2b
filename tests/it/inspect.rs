//! `cardfill inspect`: the facts and their JSON contract, exact counts of the shared cases
//! (full-size sparse shards generated from their configs), and one-line errors for broken
//! safetensors checkpoints.

use cardfill_testkit::{
    TensorSpec, lfs_sizes, materialize_case, write_safetensors, write_sharded_safetensors,
};
use serde_json::{Value, json};

use crate::util::{RunDir, cardfill, inspect_json, stderr, stdout};

/// `cardfill inspect DIR --format json`, parsed; asserts exit 0.
fn warning_messages(json: &Value) -> Vec<String> {
    json["warnings"]
        .as_array()
        .expect("warnings list")
        .iter()
        .map(|w| w["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The real files' total size of a case's `.safetensors` shards.
fn safetensors_bytes(case: &str) -> u64 {
    lfs_sizes(case)
        .expect("lfs_sizes.json")
        .iter()
        .filter(|(f, _)| f.ends_with(".safetensors"))
        .map(|(_, s)| s)
        .sum()
}

fn check_case(case: &str, architecture: &str, model_type: &str, total: u64) {
    let dir = tempfile::tempdir().expect("temporary directory");
    materialize_case(case, dir.path()).expect("generate the case's shards");
    let json = inspect_json(dir.path());
    assert_eq!(json["parameters"]["total"], total, "{case}");
    assert_eq!(
        json["parameters"]["by_dtype"],
        json!({ "BF16": total }),
        "{case}"
    );
    assert_eq!(json["model"]["architecture"], architecture);
    assert_eq!(json["model"]["model_type"], model_type);
    assert!(
        json["model"].get("base_model").is_none(),
        "{case} has no base model: {}",
        json["model"]
    );
    assert_eq!(json["checkpoint"]["format"], "safetensors-sharded");
    assert_eq!(
        json["checkpoint"]["files"],
        json!([
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors"
        ])
    );
    assert_eq!(json["checkpoint"]["bytes"], safetensors_bytes(case));
    assert_eq!(
        json["sources"]["parameters.total"],
        "model.safetensors.index.json: weight_map + 2 shard headers: Σ shape products"
    );
    assert_eq!(
        json["sources"]["model.architecture"],
        "config.json: architectures[0]"
    );
    assert_eq!(json["model"]["library_name"], "transformers");
    let messages = warning_messages(&json);
    assert!(
        !messages.iter().any(|m| m.contains("safetensors")),
        "{case}: {messages:?}"
    );
}

#[test]
fn mistral_7b_counts_exactly_once() {
    check_case(
        "mistral-7b-v0.1",
        "MistralForCausalLM",
        "mistral",
        7_241_732_096,
    );
}

#[test]
fn gemma_2b_counts_exactly_with_tied_embeddings() {
    check_case("gemma-2b-it", "GemmaForCausalLM", "gemma", 2_506_172_416);
}

#[test]
fn dimensions_come_from_the_config_with_their_sources() {
    let dir = tempfile::tempdir().unwrap();
    materialize_case("gemma-2b-it", dir.path()).unwrap();
    let json = inspect_json(dir.path());
    let model = &json["model"];
    assert_eq!(model["hidden_size"], 2048);
    assert_eq!(model["num_layers"], 18);
    assert_eq!(model["num_attention_heads"], 8);
    assert_eq!(model["num_key_value_heads"], 1);
    assert_eq!(model["head_dim"], 256);
    assert_eq!(model["intermediate_size"], 16384);
    assert_eq!(model["vocab_size"], 256000);
    assert_eq!(model["context_length"], 8192);
    assert_eq!(model["dtype"], "bfloat16");
    assert_eq!(
        json["sources"]["model.context_length"],
        "config.json: max_position_embeddings"
    );
}

#[test]
fn text_output_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    materialize_case("mistral-7b-v0.1", dir.path()).unwrap();
    let out = cardfill().arg("inspect").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("parameters.total"))
        .unwrap_or_else(|| panic!("no parameters.total line in:\n{text}"));
    assert!(line.contains("7241732096 (7.24B)"), "{line}");
    let line = text
        .lines()
        .find(|l| l.starts_with("checkpoint.bytes"))
        .unwrap();
    assert!(line.contains("14483498040 (13.49 GiB)"), "{line}");
    assert!(text.contains("← model.safetensors.index.json: weight_map + 2 shard headers"));
}

#[test]
fn single_file_counts_scalars_and_integer_buffers_like_the_hub() {
    let run = RunDir::new();
    let len = write_safetensors(
        &run.path().join("model.safetensors"),
        &[
            TensorSpec::new("encoder.weight", "F32", &[768, 3]),
            TensorSpec::new("embeddings.position_ids", "I64", &[1, 514]),
            TensorSpec::new("logit_scale", "F32", &[]),
        ],
    )
    .expect("write model.safetensors");
    let json = inspect_json(run.path());
    assert_eq!(
        json["parameters"]["by_dtype"],
        json!({"F32": 2305, "I64": 514})
    );
    assert_eq!(json["parameters"]["total"], 2819);
    assert_eq!(json["checkpoint"]["format"], "safetensors");
    assert_eq!(json["checkpoint"]["files"], json!(["model.safetensors"]));
    assert_eq!(json["checkpoint"]["bytes"], len);
    assert_eq!(
        json["sources"]["parameters.by_dtype"],
        "model.safetensors: header: Σ shape products per dtype"
    );
    assert!(
        json.get("model")
            .is_none_or(|m| m.get("base_model").is_none())
    );
}

/// A small sharded checkpoint in a fresh directory.
fn small_sharded() -> RunDir {
    let run = RunDir::new().file(
        "config.json",
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#,
    );
    let tensors: Vec<TensorSpec> = (0..4)
        .map(|i| TensorSpec::new(format!("w{i}"), "F16", &[8, 8]))
        .collect();
    write_sharded_safetensors(run.path(), &tensors, None, 2).expect("write shards");
    run
}

/// Runs `inspect --format json` and returns the one warning whose message contains `needle`.
fn warning_about(run: &RunDir, needle: &str) -> String {
    let json = inspect_json(run.path());
    let messages = warning_messages(&json);
    let found: Vec<&String> = messages.iter().filter(|m| m.contains(needle)).collect();
    assert_eq!(found.len(), 1, "{messages:?}");
    assert!(!found[0].contains('\n'));
    found[0].clone()
}

fn corrupt(run: &RunDir, shard: &str, bytes: &[u8]) {
    std::fs::write(run.path().join(shard), bytes).expect("overwrite shard");
}

#[test]
fn truncated_header_length_is_one_line() {
    let run = small_sharded();
    corrupt(&run, "model-00001-of-00002.safetensors", &[7, 0, 0]);
    let m = warning_about(&run, "model-00001-of-00002.safetensors`");
    assert!(
        m.ends_with("file is 3 bytes, too short for the 8-byte header length"),
        "{m}"
    );
}

#[test]
fn header_length_past_the_end_is_one_line() {
    let run = small_sharded();
    let mut bytes = 4096u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{\"w0\":");
    corrupt(&run, "model-00001-of-00002.safetensors", &bytes);
    let m = warning_about(&run, "model-00001-of-00002.safetensors`");
    assert!(
        m.ends_with(
            "header length 4096 at offset 0 runs past the end of the file (14 bytes): truncated"
        ),
        "{m}"
    );
}

fn with_header(header: &str, data: usize) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data, 0);
    bytes
}

#[test]
fn overlapping_offsets_are_one_line() {
    let run = small_sharded();
    let header = r#"{"w0":{"dtype":"F16","shape":[8,8],"data_offsets":[0,128]},"w1":{"dtype":"F16","shape":[8,8],"data_offsets":[64,192]}}"#;
    corrupt(
        &run,
        "model-00001-of-00002.safetensors",
        &with_header(header, 192),
    );
    let m = warning_about(&run, "model-00001-of-00002.safetensors`");
    assert!(
        m.contains(
            "tensor `w1` data_offsets [64, 192] at offset 190 overlap tensor `w0` (ends at 128)"
        ),
        "{m}"
    );
}

#[test]
fn bad_json_is_one_line_with_its_offset() {
    let run = small_sharded();
    corrupt(
        &run,
        "model-00002-of-00002.safetensors",
        &with_header(r#"{"w2":{"dtype":"F16","shape":[8,8]"#, 0),
    );
    let m = warning_about(&run, "model-00002-of-00002.safetensors`");
    assert!(
        m.contains("malformed header JSON at offset 41: EOF while parsing"),
        "{m}"
    );
}

#[test]
fn index_naming_a_missing_shard_is_a_warning() {
    let run = small_sharded();
    std::fs::remove_file(run.path().join("model-00002-of-00002.safetensors")).unwrap();
    let m = warning_about(&run, "which is missing");
    assert!(
        m.contains("model.safetensors.index.json`: weight_map names `model-00002-of-00002.safetensors`, which is missing"),
        "{m}"
    );
}

#[test]
fn total_size_mismatch_is_a_warning_with_both_numbers() {
    let run = small_sharded();
    let path = run.path().join("model.safetensors.index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["metadata"]["total_size"] = json!(1000);
    std::fs::write(&path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();
    let m = warning_about(&run, "total_size");
    assert!(
        m.ends_with(
            "metadata.total_size is 1000 bytes but the shard headers describe 512 data bytes"
        ),
        "{m}"
    );
    // The count still comes from the headers.
    assert_eq!(inspect_json(run.path())["parameters"]["total"], 256);
}

#[test]
fn text_output_warns_on_stderr_and_exits_zero_unless_strict() {
    let run = small_sharded();
    corrupt(&run, "model-00001-of-00002.safetensors", b"");
    let out = run.run(&["inspect", "."]);
    assert!(out.status.success());
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("model-00001-of-00002.safetensors"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.starts_with("warning: "), "{line}");
    assert!(!stdout(&out).contains("parameters.total"));
    let strict = run.run(&["inspect", ".", "--strict"]);
    assert!(!strict.status.success());
}

#[test]
fn missing_directory_is_one_line() {
    let out = cardfill()
        .args(["inspect", "/nonexistent/cardfill-ckpt"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("`/nonexistent/cardfill-ckpt`"), "{err}");
}
