//! See `main.rs` for what this module covers.
//!
//! The corpus `tests/fixtures/real/`: tiny artifacts written by the libraries' own save
//! functions (`generate.py`), with the libraries' own figures in `figures.json`. cardfill must
//! state the same figures, field by field, and `fill` on each must keep every human line, be
//! idempotent, pass `--check` and `validate`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::util::{cardfill, fixtures, json_stdout, stderr, stdout};

fn real() -> PathBuf {
    fixtures().join("real")
}

fn figures() -> Value {
    serde_json::from_str(&fs::read_to_string(real().join("figures.json")).unwrap()).unwrap()
}

/// Artifacts with weights (the cache and the results-only folder aside).
const DIRS: [&str; 11] = [
    "torch-whole-module",
    "tf5-trainer",
    "tf5-peft-trainer",
    "tf4-trainer",
    "tf4-peft-trainer",
    "sentence-transformers",
    "diffusers-unet",
    "diffusers-pipeline",
    "gguf",
    "torch-dcp",
    "lm-eval",
];

fn run(args: &[&str], dir: &Path) -> Output {
    cardfill()
        .args(args)
        .arg(dir)
        .env("HF_HUB_CACHE", real().join("hf-cache"))
        .output()
        .unwrap()
}

fn inspect(dir: &Path) -> Value {
    json_stdout(&run(&["inspect", "--format", "json"], dir))
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// A copy of the real-library fixture `name` in a temporary directory.
pub(crate) fn copy(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let mut stack = vec![real().join(name)];
    let root = real().join(name);
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let dest = tmp.path().join(p.strip_prefix(&root).unwrap());
            if p.is_dir() {
                fs::create_dir_all(&dest).unwrap();
                stack.push(p);
            } else {
                fs::copy(&p, &dest).unwrap();
            }
        }
    }
    tmp
}

#[test]
fn counts_equal_the_libraries_figures() {
    let fig = figures();
    let cases: [(&str, &str, &str); 10] = [
        ("torch-whole-module", "tensor_elements", "parameters.total"),
        ("tf5-trainer", "parameters", "parameters.total"),
        ("tf4-trainer", "parameters", "parameters.total"),
        ("tf4-peft-trainer", "trainable", "parameters.trainable"),
        ("tf4-peft-trainer", "base_parameters", "parameters.base"),
        ("tf5-peft-trainer", "trainable", "parameters.trainable"),
        ("tf5-peft-trainer", "base_parameters", "parameters.base"),
        ("sentence-transformers", "parameters", "parameters.total"),
        ("diffusers-unet", "parameters", "parameters.total"),
        ("torch-dcp", "parameters", "parameters.total"),
    ];
    for (dir, figure, path) in cases {
        let facts = inspect(&real().join(dir));
        assert_eq!(at(&facts, path), &fig[dir][figure], "{dir}: {path}");
    }
    for dir in ["diffusers-pipeline", "gguf"] {
        let facts = inspect(&real().join(dir));
        assert_eq!(
            at(&facts, "parameters.total"),
            &fig[dir]["parameters"],
            "{dir}"
        );
    }
    // PEFT's own print_trainable_parameters: trainable of all (base + adapter).
    let peft = inspect(&real().join("tf5-peft-trainer"));
    let all = at(&peft, "parameters.trainable").as_u64().unwrap()
        + at(&peft, "parameters.base").as_u64().unwrap();
    assert_eq!(Value::from(all), fig["tf5-peft-trainer"]["all_parameters"]);
}

#[test]
fn trainer_state_and_arguments_equal_the_trainers() {
    let fig = figures();
    for dir in [
        "tf5-trainer",
        "tf5-peft-trainer",
        "tf4-trainer",
        "tf4-peft-trainer",
    ] {
        let f = inspect(&real().join(dir));
        let want = &fig[dir];
        assert_eq!(at(&f, "training.steps"), &want["global_step"], "{dir}");
        assert_eq!(
            at(&f, "training.runtime_s"),
            &want["train_runtime"],
            "{dir}"
        );
        assert_eq!(at(&f, "model.base_model"), &want["base_model"], "{dir}");
        let hp = at(&f, "training.hyperparameters");
        for (k, v) in want["hyperparameters"].as_object().unwrap() {
            assert_eq!(hp[k].as_f64(), v.as_f64(), "{dir}: {k}");
        }
        let results = at(&f, "evaluation.results").as_array().unwrap();
        let loss = results.iter().find(|r| r["metric"] == "loss").unwrap();
        assert_eq!(loss["value"], want["eval_loss"], "{dir}");
        assert_eq!(at(&f, "training.regime"), "fp32", "{dir}");
        assert_eq!(
            at(&f, "training.datasets"),
            &json!([{"id": "cardfill-test/tiny-text", "config": null, "split": null}])
        );
    }
    // transformers 5 saves no `_name_or_path`: the Trainer's card names the base model.
    let f = inspect(&real().join("tf5-trainer"));
    assert_eq!(
        f["sources"]["model.base_model"],
        "README.md: front matter base_model"
    );
    let src = f["sources"]["training.regime"].as_str().unwrap();
    assert!(src.contains("config.json dtype"), "{src}");
}

#[test]
fn whole_module_pickle_is_reported_and_strict_fails() {
    let dir = real().join("torch-whole-module");
    let f = inspect(&dir);
    assert_eq!(at(&f, "checkpoint.format"), "pytorch");
    assert_eq!(at(&f, "checkpoint.files"), &json!(["model.pt"]));
    assert_eq!(
        at(&f, "checkpoint.unsafe")[0]["global"],
        figures()["torch-whole-module"]["class"]
    );
    let strict = run(&["inspect", "--strict"], &dir);
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
    let empty = run(&["inspect", "--strict"], &real().join("torch-no-tensors"));
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        stderr(&empty).contains("[weights-uncounted]"),
        "{}",
        stderr(&empty)
    );
}

#[test]
fn gguf_and_diffusers_metadata() {
    let fig = figures();
    let g = inspect(&real().join("gguf"));
    assert_eq!(at(&g, "model.name"), &fig["gguf"]["name"]);
    assert_eq!(at(&g, "model.model_type"), &fig["gguf"]["architecture"]);
    assert_eq!(at(&g, "model.base_model"), &fig["gguf"]["base_model"]);
    assert_eq!(at(&g, "model.base_model_relation"), "quantized");
    let u = inspect(&real().join("diffusers-unet"));
    assert_eq!(at(&u, "model.library_name"), "diffusers");
    assert_eq!(
        at(&u, "model.architecture"),
        &fig["diffusers-unet"]["class"]
    );
    let p = inspect(&real().join("diffusers-pipeline"));
    assert_eq!(
        at(&p, "model.model_type"),
        &fig["diffusers-pipeline"]["class"]
    );
}

/// Every line of `before` appears in `after`, in order.
fn keeps_lines(before: &str, after: &str) -> bool {
    let mut rest = after.lines();
    before.lines().all(|l| rest.any(|m| m == l))
}

#[test]
fn fill_keeps_human_lines_is_idempotent_and_valid() {
    for dir in DIRS {
        let tmp = copy(dir);
        let card = tmp.path().join("README.md");
        let before = fs::read_to_string(&card).unwrap_or_default();
        let out = run(&["fill", "--no-backup"], tmp.path());
        assert!(out.status.success(), "{dir}: {}", stderr(&out));
        let first = fs::read_to_string(&card).unwrap();
        assert!(keeps_lines(&before, &first), "{dir}: a human line was lost");
        let again = run(&["fill", "--no-backup"], tmp.path());
        assert!(again.status.success(), "{dir}: {}", stderr(&again));
        assert_eq!(
            fs::read_to_string(&card).unwrap(),
            first,
            "{dir}: not idempotent"
        );
        let check = run(&["fill", "--check"], tmp.path());
        assert_eq!(check.status.code(), Some(0), "{dir}: {}", stderr(&check));
        let valid = cardfill().args(["validate"]).arg(&card).output().unwrap();
        assert_eq!(
            valid.status.code(),
            Some(0),
            "{dir}: {}{}",
            stdout(&valid),
            stderr(&valid)
        );
        assert!(!first.contains("0 hours"), "{dir}");
        // A trainer log draws the figure beside the card; deleting it makes the card stale.
        let figure = tmp.path().join("cardfill-training.png");
        if dir.contains("trainer") {
            assert!(first.contains("](cardfill-training.png)"), "{dir}");
            let bytes = fs::read(&figure).unwrap();
            assert_eq!(&bytes[..4], b"\x89PNG", "{dir}");
            fs::remove_file(&figure).unwrap();
            let stale = run(&["fill", "--check"], tmp.path());
            assert_eq!(stale.status.code(), Some(1), "{dir}");
            assert!(run(&["fill", "--no-backup"], tmp.path()).status.success());
            assert_eq!(
                fs::read(&figure).unwrap(),
                bytes,
                "{dir}: same facts, same bytes"
            );
        } else {
            assert!(!figure.exists(), "{dir}");
        }
    }
}

/// Width and height from a PNG's header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// A run record of one node with `gpus` GPUs whose power was sampled every 10 s for 20 min,
/// written by cardfill's own record writer.
fn power_record(dir: &Path, gpus: u32) {
    use cardfill_hardware::gpu::{GpuInfo, counter_energy};
    use cardfill_hardware::record::{RecordKind, RunRecord, record_dir, write_record};
    let mut r = RunRecord::new(RecordKind::Run, "node1".into(), "lone-1".into());
    r.start = Some("2026-12-01T08:00:00.000Z".into());
    r.end = Some("2026-12-01T08:20:00.000Z".into());
    r.gpus = (0..gpus)
        .map(|i| GpuInfo {
            index: i,
            name: Some("NVIDIA H100 80GB HBM3".into()),
            energy: Some(counter_energy(0, 360_000_000)),
            power_samples: (0..=120)
                .map(|k| {
                    [
                        f64::from(k) * 10.0,
                        300.0 + f64::from(i * 20 + (k * 7) % 40),
                    ]
                })
                .collect(),
            ..GpuInfo::default()
        })
        .collect();
    r.finish();
    write_record(&record_dir(dir), r).unwrap();
}

#[test]
fn run_record_power_samples_add_a_panel_to_the_figure() {
    let plain = copy("tf5-trainer");
    assert!(run(&["fill", "--no-backup"], plain.path()).status.success());
    let without = fs::read(plain.path().join("cardfill-training.png")).unwrap();
    assert!(inspect(plain.path())["run"]["power"].is_null());

    let tmp = copy("tf5-trainer");
    power_record(tmp.path(), 2);
    let facts = inspect(tmp.path());
    let power = &facts["run"]["power"];
    assert_eq!(power.as_array().unwrap().len(), 2, "{facts}");
    assert_eq!(power[1]["gpu"], "GPU 1");
    assert_eq!(power[1]["samples"][0], json!([0.0, 320.0]));
    assert_eq!(power[1]["samples"].as_array().unwrap().len(), 121);
    // The counters still give the energy: 2 × 360 kJ.
    assert_eq!(facts["run"]["energy_method"], "measured");
    assert_eq!(facts["run"]["energy_kwh"], json!(0.2));

    let out = run(&["fill", "--no-backup"], tmp.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let card = fs::read_to_string(tmp.path().join("README.md")).unwrap();
    assert!(
        card.contains(
            "![Loss and learning rate by step; GPU power over time](cardfill-training.png)"
        ),
        "{card}"
    );
    let with = fs::read(tmp.path().join("cardfill-training.png")).unwrap();
    assert_eq!(png_size(&without), (800, 560));
    assert_eq!(
        png_size(&with),
        (800, 560 + 260),
        "the power panel below the loss"
    );
    assert_eq!(
        without,
        fs::read(plain.path().join("cardfill-training.png")).unwrap()
    );

    // Same facts, same bytes: a second fill changes nothing and --check passes.
    assert!(run(&["fill", "--no-backup"], tmp.path()).status.success());
    assert_eq!(
        fs::read(tmp.path().join("cardfill-training.png")).unwrap(),
        with
    );
    assert_eq!(run(&["fill", "--check"], tmp.path()).status.code(), Some(0));

    // Twelve GPUs: one summed line, a different figure of the same size.
    let many = copy("tf5-trainer");
    power_record(many.path(), 12);
    assert!(run(&["fill", "--no-backup"], many.path()).status.success());
    let summed = fs::read(many.path().join("cardfill-training.png")).unwrap();
    assert_eq!(png_size(&summed), (800, 820));
    assert_ne!(summed, with);
}

#[test]
fn cards_read_well_on_library_cards() {
    // The Trainer's, PEFT's and sentence-transformers' cards list framework versions, and
    // the Trainer's its hyperparameters and results table: no second copy.
    for dir in [
        "tf5-trainer",
        "tf5-peft-trainer",
        "tf4-trainer",
        "sentence-transformers",
    ] {
        let out = run(&["fill", "--dry-run"], &real().join(dir));
        let card = stdout(&out);
        assert!(!card.contains("cardfill:begin software"), "{dir}");
        assert!(!card.contains("cardfill:begin training_results"), "{dir}");
        assert!(
            !card.contains("cardfill:begin training_hyperparameters"),
            "{dir}"
        );
    }
    let peft = stdout(&run(
        &["fill", "--dry-run"],
        &real().join("tf5-peft-trainer"),
    ));
    assert!(
        peft.contains("- **Parameters:** 896 trainable adapter params on a 26.8k-param base (3.24%; 896 of 27,680)"),
        "{peft}"
    );
    assert!(peft.contains("- **Training runtime:** "));
    // Without the Trainer's card, cardfill writes the sections itself.
    let tmp = copy("tf5-trainer");
    fs::remove_file(tmp.path().join("README.md")).unwrap();
    let card = stdout(&run(&["fill", "--dry-run"], tmp.path()));
    assert!(
        card.contains("| Training Loss | Epoch | Step | Validation Loss |"),
        "{card}"
    );
    assert!(
        card.contains(
            "- **Batch size:** 2 per device × 2 gradient accumulation steps = 4 effective"
        )
    );
    assert!(card.contains("- `learning_rate`: 0.001"));
    // lm-evaluation-harness (a file lm_eval wrote): complete entries go to model-index with
    // the library's figures, the local-file task stays in prose.
    let lib = &figures()["lm-eval"]["results"];
    assert_eq!(lib["tiny_qa"]["acc,none"], 0.375);
    assert_eq!(lib["tiny_qa_local"]["acc,none"], 0.4);
    let lm = stdout(&run(&["fill", "--dry-run"], &real().join("lm-eval")));
    let front = lm.split("\n---\n").next().unwrap();
    assert!(
        front.contains("- name: cardfill-test/tiny-llama"),
        "{front}"
    );
    assert!(front.contains("type: cardfill-test/tiny-qa"), "{front}");
    assert!(
        front.contains("- type: acc\n      value: 0.375\n    - type: acc_norm\n      value: 0.375"),
        "{front}"
    );
    assert!(
        !front.contains("0.4\n") && !front.contains("sample_len"),
        "{front}"
    );
    assert!(!lm.contains("local_qa.jsonl"), "{lm}");
    assert!(
        lm.contains(
            "| tiny_qa | [cardfill-test/tiny-qa](https://huggingface.co/datasets/cardfill-test/tiny-qa) `test` | acc | 0.375 | - |"
        ),
        "{lm}"
    );
    assert!(
        lm.contains("| tiny_qa_local | evaluation set | acc | 0.4 | - |"),
        "{lm}"
    );
}

#[test]
fn local_path_base_model_warning_says_so() {
    let tmp = copy("tf5-peft-trainer");
    let cfg = tmp.path().join("adapter_config.json");
    let text = fs::read_to_string(&cfg).unwrap().replace(
        "\"cardfill-test/tiny-llama\"",
        "\"/data/models/tiny-llama\"",
    );
    fs::write(&cfg, text).unwrap();
    let card = tmp.path().join("README.md");
    let text = fs::read_to_string(&card).unwrap().replace(
        "base_model: cardfill-test/tiny-llama",
        "base_model: /data/models/tiny-llama",
    );
    fs::write(&card, text).unwrap();
    let out = run(&["fill", "--dry-run"], tmp.path());
    let err = stderr(&out);
    assert!(!err.contains("needs a `base_model`"), "{err}");
    assert!(err.contains("the base model is a local path"), "{err}");
}

/// huggingface_hub's `ModelCard.load` reads every filled card, with the metadata cardfill
/// wrote (`CARDFILL_PYTHON` names the interpreter; skipped where huggingface_hub is missing).
#[test]
fn model_card_load_reads_filled_cards() {
    let python = std::env::var("CARDFILL_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import huggingface_hub"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipped: huggingface_hub is not importable (set CARDFILL_PYTHON)\n",
        );
        return;
    }
    let dirs: Vec<tempfile::TempDir> = DIRS.iter().map(|d| copy(d)).collect();
    let mut cards = Vec::new();
    for (name, tmp) in DIRS.iter().zip(&dirs) {
        let out = run(&["fill", "--no-backup"], tmp.path());
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        cards.push(tmp.path().join("README.md"));
    }
    let out = std::process::Command::new(&python)
        .arg(real().join("load_cards.py"))
        .args(&cards)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let loaded: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(loaded.len(), DIRS.len());
    let by = |name: &str| &loaded[DIRS.iter().position(|d| *d == name).unwrap()];
    assert_eq!(by("gguf")["data"]["base_model"], "cardfill-test/tiny-llama");
    assert_eq!(by("diffusers-unet")["data"]["library_name"], "diffusers");
    assert_eq!(
        by("tf5-trainer")["data"]["datasets"],
        json!(["cardfill-test/tiny-text"])
    );
    let lm = &by("lm-eval")["eval_results"];
    assert_eq!(
        lm,
        &json!([
            {"task": "text-generation", "dataset": "cardfill-test/tiny-qa", "metric": "acc", "value": 0.375},
            {"task": "text-generation", "dataset": "cardfill-test/tiny-qa", "metric": "acc_norm", "value": 0.375},
        ])
    );
}
