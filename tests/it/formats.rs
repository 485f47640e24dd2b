//! Every checkpoint format beyond safetensors, through the binary: `.bin` (zip, legacy,
//! sharded), hostile pickles, PEFT adapters, trainer directories, GGUF, git-lfs pointers.
//! Files are real formats written by `cardfill_testkit` (sparse where large).

use cardfill_testkit::gguf::{GgufTensor, GgufValue, write_gguf};
use cardfill_testkit::torch::{self as tk, StateDictLayout};
use cardfill_testkit::{TensorSpec, case_dir, materialize_case, read_json};
use serde_json::Value;

use crate::util::{cardfill, inspect_json, stderr, stdout};

#[test]
fn llama2_7b_sharded_bin_is_counted_exactly_and_shown_like_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    materialize_case("llama2-7b-chat-hf", dir.path()).unwrap();
    tk::materialize_torch_shards("llama2-7b-chat-hf", dir.path()).unwrap();
    let json = inspect_json(dir.path());
    assert_eq!(json["parameters"]["total"], 6_738_415_616u64);
    assert_eq!(json["checkpoint"]["format"], "pytorch-sharded");
    assert_eq!(json["checkpoint"]["files"].as_array().unwrap().len(), 7);
    assert!(json["checkpoint"].get("unsafe").is_none());
    let out = cardfill().arg("inspect").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("6738415616 (6.74B)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn mistral_bin_copy_is_an_alternative_of_the_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    materialize_case("mistral-7b-v0.1", dir.path()).unwrap();
    tk::materialize_torch_shards("mistral-7b-v0.1", dir.path()).unwrap();
    let json = inspect_json(dir.path());
    assert_eq!(json["parameters"]["total"], 7_241_732_096u64);
    assert_eq!(json["checkpoint"]["format"], "safetensors-sharded");
    let alts = json["checkpoint"]["alternatives"].as_array().unwrap();
    assert_eq!(alts.len(), 1);
    assert_eq!(alts[0]["format"], "pytorch-sharded");
    assert_eq!(alts[0]["parameters"], 7_241_732_096u64);
}

#[test]
fn whisper_trainer_bin_counts_tied_weights_once() {
    let dir = tempfile::tempdir().unwrap();
    materialize_case("trainer-whisper-tiny-nob", dir.path()).unwrap();
    let config = read_json(&dir.path().join("config.json")).unwrap();
    let (tensors, tied) = cardfill_testkit::models::whisper_tensors(&config).unwrap();
    let layout = StateDictLayout {
        tied: vec![tied],
        ..StateDictLayout::default()
    };
    tk::write_torch_with(&dir.path().join("pytorch_model.bin"), &tensors, &layout).unwrap();
    let json = inspect_json(dir.path());
    assert_eq!(json["parameters"]["total"], 37_760_640u64);
    assert_eq!(json["parameters"]["by_dtype"]["F32"], 37_760_640u64);
}

#[test]
fn hostile_pickle_is_reported_as_unsafe_and_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let cmd = format!("touch {}", marker.display());
    let mut pkl = b"\x80\x02csubprocess\ncheck_call\n(X".to_vec();
    pkl.extend((cmd.len() as u32).to_le_bytes());
    pkl.extend(cmd.as_bytes());
    pkl.extend(b"\x85tR.");
    tk::write_torch_zip(&dir.path().join("pytorch_model.bin"), &pkl, &[]).unwrap();
    let json = inspect_json(dir.path());
    assert!(!marker.exists(), "the pickle ran");
    let unsafe_list = json["checkpoint"]["unsafe"].as_array().unwrap();
    assert_eq!(unsafe_list[0]["global"], "subprocess.check_call");
    assert_eq!(unsafe_list[0]["why"], "runs a shell command");
    assert!(json["parameters"].get("total").is_none());
    let out = cardfill().arg("inspect").arg(dir.path()).output().unwrap();
    assert!(
        stderr(&out).contains("`pytorch_model.bin`: pickle offset 2 names `subprocess.check_call`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn real_peft_trainer_checkpoint_is_read_without_executing_anything() {
    let json = inspect_json(&case_dir("peft-lora-tinyllama-trainer-ckpt"));
    assert_eq!(json["model"]["base_model_relation"], "adapter");
    assert_eq!(json["model"]["adapter"]["r"], 8);
    assert!(json["model"].get("base_model").is_none());
    assert!(
        json.get("checkpoint")
            .is_none_or(|c| c.get("unsafe").is_none())
    );
    let codes: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(codes.contains(&"base-model-unknown"), "{codes:?}");
    assert!(!codes.iter().any(|c| c.contains("invalid")), "{codes:?}");
}

#[test]
fn peft_adapter_bin_gives_trainable_parameters() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        case_dir("peft-default-card-llamafactory-ckpt900").join("adapter_config.json"),
        dir.path().join("adapter_config.json"),
    )
    .unwrap();
    let lora = [
        TensorSpec::new("base_model.model.q_proj.lora_A.weight", "F32", &[8, 3072]),
        TensorSpec::new("base_model.model.q_proj.lora_B.weight", "F32", &[3072, 8]),
    ];
    tk::write_torch(&dir.path().join("adapter_model.bin"), &lora).unwrap();
    let json = inspect_json(dir.path());
    assert_eq!(json["parameters"]["trainable"], 49_152);
    assert_eq!(
        json["model"]["base_model"],
        "meta-llama/Llama-3.2-3B-Instruct"
    );
}

#[test]
fn trainer_output_dir_inspects_the_highest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    for (step, rows) in [("checkpoint-500", 2u64), ("checkpoint-1000", 3)] {
        let sub = dir.path().join(step);
        std::fs::create_dir(&sub).unwrap();
        let w = [TensorSpec::new("w", "BF16", &[rows, 10])];
        tk::write_torch(&sub.join("pytorch_model.bin"), &w).unwrap();
    }
    let json = inspect_json(dir.path());
    assert_eq!(json["checkpoint"]["inspected_dir"], "checkpoint-1000");
    assert_eq!(json["parameters"]["total"], 30);
}

#[test]
fn gguf_file_is_counted_by_ggml_type() {
    let dir = tempfile::tempdir().unwrap();
    let meta = [
        ("general.architecture", GgufValue::Str("gemma".into())),
        ("general.name", GgufValue::Str("gemma-2b-it".into())),
        ("gemma.context_length", GgufValue::U32(8192)),
    ];
    let tensors = [
        GgufTensor::new("token_embd.weight", &[256, 2048], 0),
        GgufTensor::new("blk.0.ffn_up.weight", &[512, 2048], 8),
    ];
    write_gguf(&dir.path().join("gemma-2b-it.gguf"), 3, &meta, &tensors).unwrap();
    let json = inspect_json(dir.path());
    assert_eq!(json["checkpoint"]["format"], "gguf");
    assert_eq!(json["parameters"]["by_dtype"]["F32"], 524_288);
    assert_eq!(json["parameters"]["by_dtype"]["Q8_0"], 1_048_576);
    assert_eq!(json["checkpoint"]["gguf"]["context_length"], 8192);

    // The card shows the count and how the file packs it.
    let out = cardfill()
        .args(["fill", "--dry-run"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let card = stdout(&out);
    assert!(
        card.contains("- **Parameters:** 1.57M params (1,572,864)"),
        "{card}"
    );
    assert!(card.contains("- **GGUF:** version 3"), "{card}");
    assert!(card.contains("bytes per parameter"), "{card}");
}

#[test]
fn corrupt_bin_is_a_one_line_warning_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pytorch_model.bin"), b"PK\x03\x04garbage").unwrap();
    let out = cardfill().arg("inspect").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("pytorch_model.bin"))
        .unwrap_or_else(|| panic!("no warning naming the file: {err}"));
    assert!(
        line.contains("no end-of-central-directory record"),
        "{line}"
    );
}

#[test]
fn lfs_pointers_say_weights_not_present() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_dir("trainer-whisper-tiny-nob");
    materialize_case("trainer-whisper-tiny-nob", dir.path()).unwrap();
    for f in ["pytorch_model.bin", "training_args.bin"] {
        std::fs::copy(case.join("lfs_pointers").join(f), dir.path().join(f)).unwrap();
    }
    let json = inspect_json(dir.path());
    assert_eq!(json["checkpoint"]["weights_missing"], true);
    assert_eq!(json["checkpoint"]["bytes"], 151_098_921u64);
    assert!(json["parameters"].get("total").is_none());
}

#[test]
fn fill_writes_the_bin_checkpoint_count_into_the_card() {
    let dir = tempfile::tempdir().unwrap();
    materialize_case("llama2-7b-chat-hf", dir.path()).unwrap();
    tk::materialize_torch_shards("llama2-7b-chat-hf", dir.path()).unwrap();
    let out = cardfill().arg("fill").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let card = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(card.contains("6.74B params"), "{card}");
}

#[test]
fn gemma_gguf_beside_safetensors_is_a_second_format_not_extra_weights() {
    let dir = tempfile::tempdir().unwrap();
    materialize_case("gemma-2b-it", dir.path()).unwrap();
    let config = read_json(&dir.path().join("config.json")).unwrap();
    let tensors: Vec<GgufTensor> = cardfill_testkit::decoder_tensors(&config)
        .unwrap()
        .into_iter()
        .map(|t| GgufTensor {
            name: t.name,
            shape: t.shape,
            ggml_type: 0,
        })
        .collect();
    let meta = [("general.architecture", GgufValue::Str("gemma".into()))];
    write_gguf(&dir.path().join("gemma-2b-it.gguf"), 3, &meta, &tensors).unwrap();
    let json = inspect_json(dir.path());
    assert_eq!(json["parameters"]["total"], 2_506_172_416u64);
    assert_eq!(json["checkpoint"]["format"], "safetensors-sharded");
    let alts = json["checkpoint"]["alternatives"].as_array().unwrap();
    assert_eq!(alts.len(), 1);
    assert_eq!(alts[0]["format"], "gguf");
    assert_eq!(alts[0]["parameters"], 2_506_172_416u64);
    assert_eq!(json["checkpoint"]["gguf"]["bytes_per_parameter"], 4.0);
}

#[test]
fn sd_v1_5_pipeline_counts_unet_and_text_encoder_and_keeps_variants_apart() {
    let dir = tempfile::tempdir().unwrap();
    materialize_case("sd-v1-5-diffusers", dir.path()).unwrap();
    let d = dir.path();
    let unet =
        cardfill_testkit::models::unet_tensors(&read_json(&d.join("unet/config.json")).unwrap())
            .unwrap();
    let clip = cardfill_testkit::models::clip_text_tensors(
        &read_json(&d.join("text_encoder/config.json")).unwrap(),
    )
    .unwrap();
    let half = |ts: &[TensorSpec]| -> Vec<TensorSpec> {
        ts.iter()
            .map(|t| TensorSpec::new(t.name.clone(), "F16", &t.shape))
            .collect()
    };
    let unet_len = cardfill_testkit::write_safetensors(
        &d.join("unet/diffusion_pytorch_model.safetensors"),
        &unet,
    )
    .unwrap();
    cardfill_testkit::write_safetensors(
        &d.join("unet/diffusion_pytorch_model.fp16.safetensors"),
        &half(&unet),
    )
    .unwrap();
    tk::write_torch(&d.join("unet/diffusion_pytorch_model.non_ema.bin"), &unet).unwrap();
    let te_len =
        cardfill_testkit::write_safetensors(&d.join("text_encoder/model.safetensors"), &clip)
            .unwrap();
    let mut whole = unet.clone();
    whole.extend(clip.iter().cloned());
    cardfill_testkit::write_safetensors(&d.join("v1-5-pruned-emaonly.safetensors"), &whole)
        .unwrap();
    // Within the header padding of the real file; its fp16 variant matches to the byte.
    assert!(unet_len.abs_diff(3_438_167_540) < 16, "{unet_len}");

    let json = inspect_json(d);
    assert_eq!(json["checkpoint"]["format"], "diffusers");
    assert_eq!(json["parameters"]["components"]["unet"], 859_520_964u64);
    assert_eq!(
        json["parameters"]["components"]["text_encoder"],
        123_060_557u64
    );
    assert_eq!(json["parameters"]["total"], 859_520_964u64 + 123_060_557u64);
    let alts = json["checkpoint"]["alternatives"].as_array().unwrap();
    assert_eq!(alts.len(), 3, "{alts:?}");
    let sizes = cardfill_testkit::lfs_sizes("sd-v1-5-diffusers").unwrap();
    // The real files were written without the 8-byte header padding of today's writer.
    let real = sizes["text_encoder/model.safetensors"];
    assert!(real.abs_diff(te_len) < 8, "{real} vs {te_len}");
    assert_eq!(
        alts[0]["bytes"],
        sizes["unet/diffusion_pytorch_model.fp16.safetensors"]
    );
}

#[test]
fn lfs_pointers_in_place_of_indexed_shards_are_weights_not_present() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_dir("gemma-2b-it");
    for name in ["config.json", "model.safetensors.index.json"] {
        std::fs::copy(case.join(name), dir.path().join(name)).unwrap();
    }
    for entry in std::fs::read_dir(case.join("lfs_pointers")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let out = cardfill()
        .args(["inspect", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["checkpoint"]["weights_missing"], true);
    assert!(
        json["parameters"]["total"].is_null(),
        "no count without weights"
    );
    let codes: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(codes.contains(&"weights-not-present"), "{codes:?}");
    assert!(
        !codes.iter().any(|c| c.ends_with("collector-failed")),
        "{codes:?}"
    );
}
