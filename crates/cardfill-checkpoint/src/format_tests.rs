//! Whole-directory tests of every format beyond safetensors, on generated real files.

use std::path::Path;

use cardfill_facts::paths;
use cardfill_testkit::gguf::{GgufTensor, GgufValue, write_gguf};
use cardfill_testkit::torch::{self as tk, StateDictLayout};
use cardfill_testkit::{TensorSpec, case_dir, read_json, write_safetensors};

use crate::collect;

fn t(name: &str, dtype: &str, shape: &[u64]) -> TensorSpec {
    TensorSpec::new(name, dtype, shape)
}

#[test]
fn whisper_tiny_bin_counts_tied_projection_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = read_json(&case_dir("trainer-whisper-tiny-nob").join("config.json")).unwrap();
    let (tensors, tied) = cardfill_testkit::models::whisper_tensors(&config).unwrap();
    let layout = StateDictLayout {
        tied: vec![tied],
        ..StateDictLayout::default()
    };
    tk::write_torch_with(&dir.path().join("pytorch_model.bin"), &tensors, &layout).unwrap();
    let f = collect(dir.path()).unwrap();
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(37_760_640));
    assert_eq!(
        f.value(paths::PARAMETERS_BY_DTYPE).unwrap(),
        &serde_json::json!({"F32": 37_760_640u64})
    );
    assert_eq!(f.str(paths::CHECKPOINT_FORMAT), Some("pytorch"));
    let src = f.get(paths::PARAMETERS_TOTAL).unwrap().source.to_string();
    assert!(src.contains("1 tied tensors counted once"), "{src}");
}

#[test]
fn trainer_dir_without_root_weights_inspects_highest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    for step in ["checkpoint-100", "checkpoint-900", "checkpoint-final-x"] {
        std::fs::create_dir(dir.path().join(step)).unwrap();
    }
    let small = [t("w", "F32", &[4, 4])];
    let big = [t("w", "F32", &[8, 4])];
    tk::write_torch(&dir.path().join("checkpoint-100/pytorch_model.bin"), &small).unwrap();
    tk::write_torch(&dir.path().join("checkpoint-900/pytorch_model.bin"), &big).unwrap();
    let f = collect(dir.path()).unwrap();
    assert_eq!(
        f.str(paths::CHECKPOINT_INSPECTED_DIR),
        Some("checkpoint-900")
    );
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(32));
    assert_eq!(
        f.value(paths::CHECKPOINT_FILES).unwrap(),
        &serde_json::json!(["checkpoint-900/pytorch_model.bin"])
    );
    let src = f.get(paths::PARAMETERS_TOTAL).unwrap().source.to_string();
    assert!(src.starts_with("checkpoint-900/pytorch_model.bin"), "{src}");
    // Weights at the root win.
    tk::write_torch(&dir.path().join("pytorch_model.bin"), &small).unwrap();
    let f = collect(dir.path()).unwrap();
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(16));
    assert!(!f.contains(paths::CHECKPOINT_INSPECTED_DIR));
}

#[test]
fn peft_adapter_counts_as_trainable() {
    let lora = [
        t(
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            "F32",
            &[8, 2048],
        ),
        t(
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
            "F32",
            &[2048, 8],
        ),
    ];
    for file in ["adapter_model.safetensors", "adapter_model.bin"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            case_dir("peft-lora-tinyllama-trainer-ckpt").join("adapter_config.json"),
            dir.path().join("adapter_config.json"),
        )
        .unwrap();
        if file.ends_with(".bin") {
            tk::write_torch(&dir.path().join(file), &lora).unwrap();
        } else {
            write_safetensors(&dir.path().join(file), &lora).unwrap();
        }
        let f = collect(dir.path()).unwrap();
        assert_eq!(f.u64(paths::PARAMETERS_TRAINABLE), Some(32_768), "{file}");
        assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(32_768), "{file}");
    }
}

#[test]
fn real_trainer_checkpoint_case_has_no_weights_and_no_errors() {
    let f = collect(&case_dir("peft-lora-tinyllama-trainer-ckpt")).unwrap();
    assert!(!f.contains(paths::PARAMETERS_TOTAL));
    assert!(!f.contains(paths::CHECKPOINT_UNSAFE));
    assert!(f.warnings().is_empty(), "{:?}", f.warnings());
}

#[test]
fn safetensors_and_bin_side_by_side_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let w = [t("a", "BF16", &[10, 10]), t("b", "BF16", &[10])];
    write_safetensors(&dir.path().join("model.safetensors"), &w).unwrap();
    tk::write_torch(&dir.path().join("pytorch_model.bin"), &w).unwrap();
    let f = collect(dir.path()).unwrap();
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(110));
    assert_eq!(f.str(paths::CHECKPOINT_FORMAT), Some("safetensors"));
    let alts = f.value(paths::CHECKPOINT_ALTERNATIVES).unwrap();
    assert_eq!(alts[0]["format"], "pytorch");
    assert_eq!(alts[0]["parameters"], 110);
}

#[test]
fn gguf_v3_counts_logical_parameters_by_ggml_type() {
    let dir = tempfile::tempdir().unwrap();
    let meta = [
        ("general.architecture", GgufValue::Str("llama".into())),
        ("general.name", GgufValue::Str("Tiny Llama".into())),
        ("general.file_type", GgufValue::U32(15)),
        ("general.quantization_version", GgufValue::U32(2)),
        ("llama.context_length", GgufValue::U32(4096)),
        ("llama.block_count", GgufValue::U32(1)),
        ("llama.rope.freq_base", GgufValue::F32(10000.0)),
        ("tokenizer.ggml.add_bos_token", GgufValue::Bool(true)),
        ("tokenizer.ggml.model", GgufValue::Str("llama".into())),
        (
            "tokenizer.ggml.tokens",
            GgufValue::StrArray((0..1000).map(|i| format!("tok{i}")).collect()),
        ),
        ("split.tensors.count", GgufValue::U64(3)),
    ];
    let tensors = [
        GgufTensor::new("token_embd.weight", &[1000, 512], 12),
        GgufTensor::new("blk.0.attn_q.weight", &[512, 512], 14),
        GgufTensor::new("output_norm.weight", &[512], 0),
    ];
    let len = write_gguf(&dir.path().join("tiny-Q4_K_M.gguf"), 3, &meta, &tensors).unwrap();
    let f = collect(dir.path()).unwrap();
    assert_eq!(
        f.u64(paths::PARAMETERS_TOTAL),
        Some(512_000 + 262_144 + 512)
    );
    assert_eq!(
        f.value(paths::PARAMETERS_BY_DTYPE).unwrap(),
        &serde_json::json!({"F32": 512, "Q4_K": 512_000, "Q6_K": 262_144})
    );
    assert_eq!(f.str(paths::CHECKPOINT_FORMAT), Some("gguf"));
    assert_eq!(f.u64(paths::CHECKPOINT_BYTES), Some(len));
    let g = f.value(paths::CHECKPOINT_GGUF).unwrap();
    assert_eq!(g["architecture"], "llama");
    assert_eq!(g["name"], "Tiny Llama");
    assert_eq!(g["file_type"], 15);
    assert_eq!(g["context_length"], 4096);
    assert_eq!(g["tokenizer"], "llama");
    let bpp = g["bytes_per_parameter"].as_f64().unwrap();
    assert!((bpp - len as f64 / 774_656.0).abs() < 0.001, "{bpp}");

    // The same model split in two files, and a v1 file: one weight set each.
    let split = tempfile::tempdir().unwrap();
    write_gguf(
        &split.path().join("m-00001-of-00002.gguf"),
        3,
        &meta,
        &tensors[..1],
    )
    .unwrap();
    write_gguf(
        &split.path().join("m-00002-of-00002.gguf"),
        3,
        &[],
        &tensors[1..],
    )
    .unwrap();
    let f = collect(split.path()).unwrap();
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(774_656));
    assert_eq!(f.value(paths::CHECKPOINT_GGUF).unwrap()["splits"], 2);
    let v1 = tempfile::tempdir().unwrap();
    write_gguf(&v1.path().join("old.gguf"), 1, &meta[..2], &tensors).unwrap();
    let f = collect(v1.path()).unwrap();
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(774_656));
    assert_eq!(f.value(paths::CHECKPOINT_GGUF).unwrap()["version"], 1);
}

#[test]
fn corrupt_gguf_is_a_one_line_warning_with_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut b =
        b"GGUF\x03\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
            .to_vec();
    b.extend(5u64.to_le_bytes());
    b.extend(b"ab");
    std::fs::write(dir.path().join("x.gguf"), b).unwrap();
    let f = collect(dir.path()).unwrap();
    let w = &f.warnings()[0];
    assert_eq!(w.code, "checkpoint-file-invalid");
    assert_eq!(
        w.message,
        "`x.gguf`: GGUF offset 32: string of 5 bytes runs past the end of the file"
    );
}

#[test]
fn diffusers_components_are_summed_and_variants_are_alternatives() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_dir("sd-v1-5-diffusers");
    std::fs::copy(
        case.join("model_index.json"),
        dir.path().join("model_index.json"),
    )
    .unwrap();
    let config = read_json(&case.join("text_encoder/config.json")).unwrap();
    let clip = cardfill_testkit::models::clip_text_tensors(&config).unwrap();
    let te = dir.path().join("text_encoder");
    std::fs::create_dir(&te).unwrap();
    write_safetensors(&te.join("model.safetensors"), &clip).unwrap();
    tk::write_torch(&te.join("pytorch_model.bin"), &clip).unwrap();
    let half: Vec<TensorSpec> = clip
        .iter()
        .map(|t| TensorSpec {
            dtype: "F16".into(),
            ..t.clone()
        })
        .collect();
    write_safetensors(&te.join("model.fp16.safetensors"), &half).unwrap();
    let unet = dir.path().join("unet");
    std::fs::create_dir(&unet).unwrap();
    let u = [
        t("conv_in.weight", "F32", &[320, 4, 3, 3]),
        t("conv_in.bias", "F32", &[320]),
    ];
    write_safetensors(&unet.join("diffusion_pytorch_model.safetensors"), &u).unwrap();
    tk::write_torch(&unet.join("diffusion_pytorch_model.non_ema.bin"), &u).unwrap();
    for c in ["scheduler", "tokenizer", "feature_extractor"] {
        std::fs::create_dir(dir.path().join(c)).unwrap();
    }
    // A root single-file checkpoint of the whole pipeline.
    let mut all = clip.clone();
    all.extend(u.iter().cloned());
    write_safetensors(&dir.path().join("v1-5-pruned-emaonly.safetensors"), &all).unwrap();

    let f = collect(dir.path()).unwrap();
    assert_eq!(
        f.value(paths::PARAMETERS_COMPONENTS).unwrap(),
        &serde_json::json!({"text_encoder": 123_060_557u64, "unet": 11_840})
    );
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(123_060_557 + 11_840));
    assert_eq!(f.str(paths::CHECKPOINT_FORMAT), Some("diffusers"));
    assert_eq!(f.str(paths::MODEL_NAME), Some("StableDiffusionPipeline"));
    let alts = f
        .value(paths::CHECKPOINT_ALTERNATIVES)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    let mut files: Vec<String> = alts
        .iter()
        .map(|a| a["files"][0].as_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "text_encoder/model.fp16.safetensors",
            "text_encoder/pytorch_model.bin",
            "unet/diffusion_pytorch_model.non_ema.bin",
            "v1-5-pruned-emaonly.safetensors",
        ]
    );
    assert!(
        f.warnings()
            .iter()
            .any(|w| w.code == "diffusers-component-missing")
    );
}

#[test]
fn lfs_pointers_are_weights_not_present() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_dir("llama2-7b-chat-hf");
    std::fs::copy(
        case.join("pytorch_model.bin.index.json"),
        dir.path().join("pytorch_model.bin.index.json"),
    )
    .unwrap();
    let mut declared = 0;
    for e in std::fs::read_dir(case.join("lfs_pointers")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        declared += crate::lfs::pointer(&e.path()).unwrap().size;
    }
    let f = collect(dir.path()).unwrap();
    assert!(!f.contains(paths::PARAMETERS_TOTAL));
    assert_eq!(f.bool(paths::CHECKPOINT_WEIGHTS_MISSING), Some(true));
    assert_eq!(f.u64(paths::CHECKPOINT_BYTES), Some(declared));
    assert_eq!(
        f.value(paths::CHECKPOINT_FILES)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let w = f
        .warnings()
        .iter()
        .find(|w| w.code == "weights-not-present")
        .unwrap();
    assert!(
        w.message
            .starts_with("weights not present: 7 git-lfs pointer file(s)"),
        "{w}"
    );
}

#[cfg(unix)]
#[test]
fn fifos_devices_and_symlink_loops_never_hang_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "pytorch_model.bin",
        "config.json",
        "modules.json",
        "latest",
        ".metadata",
        "model_index.json",
        "adapter_config.json",
    ] {
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join(name))
            .status()
            .unwrap();
        assert!(status.success());
    }
    std::os::unix::fs::symlink("loop.pt", dir.path().join("loop.pt")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.gguf")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("checkpoint-5")).unwrap();
    let f = collect(dir.path()).unwrap();
    assert!(!f.contains(paths::PARAMETERS_TOTAL));
    assert!(!f.contains(paths::CHECKPOINT_INSPECTED_DIR));
}

fn llama_like() -> Vec<TensorSpec> {
    vec![
        t("model.embed_tokens.weight", "BF16", &[100, 16]),
        t("model.layers.0.self_attn.q_proj.weight", "BF16", &[16, 16]),
        t("model.norm.weight", "BF16", &[16]),
    ]
}

#[test]
fn torch_distributed_checkpoint_counts_global_sizes() {
    let dir = tempfile::tempdir().unwrap();
    cardfill_testkit::torch::write_dcp(dir.path(), &llama_like(), 4).unwrap();
    let f = collect(dir.path()).unwrap();
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(1600 + 256 + 16));
    assert_eq!(f.value(paths::PARAMETERS_BY_DTYPE).unwrap()["BF16"], 1872);
    assert_eq!(f.str(paths::CHECKPOINT_FORMAT), Some("torch-distributed"));
    let d = f.value(paths::CHECKPOINT_DISTRIBUTED).unwrap();
    assert_eq!(d["kind"], "torch.distributed.checkpoint");
    assert_eq!(d["ranks"], 4);
    let src = f.get(paths::PARAMETERS_TOTAL).unwrap().source.to_string();
    assert!(src.contains("1 optimizer entries left out"), "{src}");
}

#[test]
fn deepspeed_zero2_and_zero3_are_counted_with_rank_hint() {
    for zero3 in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        cardfill_testkit::torch::write_deepspeed(
            dir.path(),
            "global_step50",
            &llama_like(),
            8,
            zero3,
        )
        .unwrap();
        let f = collect(dir.path()).unwrap();
        assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(1872), "zero3={zero3}");
        assert_eq!(f.str(paths::CHECKPOINT_FORMAT), Some("deepspeed"));
        let d = f.value(paths::CHECKPOINT_DISTRIBUTED).unwrap();
        assert_eq!(d["ranks"], 8);
        assert_eq!(d["tag"], "global_step50");
        let src = f.get(paths::PARAMETERS_TOTAL).unwrap().source.to_string();
        assert_eq!(src.contains("param_shapes"), zero3, "{src}");
    }
    // A `latest` that escapes the directory is refused.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("latest"), "../../etc").unwrap();
    let f = collect(dir.path()).unwrap();
    assert_eq!(f.warnings()[0].code, "deepspeed-latest-invalid");
}

#[test]
fn gptq_checkpoint_reports_logical_and_stored_counts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"_name_or_path": "meta-llama/Llama-2-7b-hf", "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": false}}"#,
    )
    .unwrap();
    let tensors = [
        t("l.qweight", "I32", &[512, 4096]),
        t("l.qzeros", "I32", &[32, 512]),
        t("l.scales", "F16", &[32, 4096]),
        t("l.g_idx", "I32", &[4096]),
        t("norm.weight", "F16", &[4096]),
    ];
    write_safetensors(&dir.path().join("model.safetensors"), &tensors).unwrap();
    let f = collect(dir.path()).unwrap();
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(4096 * 4096 + 4096));
    assert_eq!(
        f.u64(paths::PARAMETERS_STORED),
        Some(512 * 4096 + 32 * 512 + 32 * 4096 + 4096 + 4096)
    );
    let q = f.value(paths::CHECKPOINT_QUANTIZATION).unwrap();
    assert_eq!(q["method"], "gptq");
    assert_eq!(q["bits"], 4);
    assert_eq!(q["group_size"], 128);
    assert_eq!(f.str(paths::MODEL_BASE_MODEL_RELATION), Some("quantized"));
}

#[test]
fn mixtral_config_gives_active_parameters() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2}"#,
    )
    .unwrap();
    let mut tensors = vec![t(
        "model.layers.0.block_sparse_moe.gate.weight",
        "BF16",
        &[4, 8],
    )];
    for j in 0..4 {
        for w in ["w1", "w2", "w3"] {
            tensors.push(t(
                &format!("model.layers.0.block_sparse_moe.experts.{j}.{w}.weight"),
                "BF16",
                &[16, 8],
            ));
        }
    }
    write_safetensors(&dir.path().join("model.safetensors"), &tensors).unwrap();
    let f = collect(dir.path()).unwrap();
    let total = 32 + 4 * 3 * 128;
    assert_eq!(f.u64(paths::PARAMETERS_TOTAL), Some(total));
    assert_eq!(f.u64(paths::PARAMETERS_ACTIVE), Some(total - 2 * 3 * 128));
}

#[test]
fn sentence_transformers_modules_and_missing_folder_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("modules.json"),
        r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
            {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
            {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sentence_bert_config.json"),
        r#"{"max_seq_length": 256}"#,
    )
    .unwrap();
    write_safetensors(&dir.path().join("model.safetensors"), &llama_like()).unwrap();
    let f = collect(dir.path()).unwrap();
    let st = f.value(paths::CHECKPOINT_SENTENCE_TRANSFORMERS).unwrap();
    assert_eq!(st["modules"].as_array().unwrap().len(), 3);
    assert_eq!(st["modules"][1]["pooling"], "mean_tokens");
    assert_eq!(st["max_seq_length"], 256);
    assert_eq!(
        f.str(paths::MODEL_LIBRARY_NAME),
        Some("sentence-transformers")
    );
    let w = f
        .warnings()
        .iter()
        .find(|w| w.code == "sentence-transformers-module-missing")
        .unwrap();
    assert!(w.message.contains("`2_Normalize`"), "{w}");
}

/// Inputs the fuzz targets (`fuzz/`) once failed on, kept in `tests/fixtures/fuzz/<target>/`:
/// each must parse or fail with a one-line error, never panic.
#[test]
fn fuzz_regressions_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/fuzz");
    let inputs = |target: &str| -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(root.join(target))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    };
    let mut seen = 0;
    for data in inputs("pickle") {
        if let Err(e) = crate::pickle::parse(&data, 0, &crate::pickle::Limits::default()) {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        seen += 1;
    }
    for data in inputs("torch_zip") {
        let mut c = std::io::Cursor::new(&data);
        match crate::pytorch::read_from(&mut c, data.len() as u64, Path::new("fuzz.bin")) {
            Ok(tf) => drop(crate::pytorch::state_dict(&tf)),
            Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
        }
        seen += 1;
    }
    for data in inputs("gguf") {
        if let Err(e) = crate::gguf::parse(std::io::Cursor::new(&data), data.len() as u64) {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        seen += 1;
    }
    assert!(
        seen >= 1,
        "no regression inputs found under {}",
        root.display()
    );
}
