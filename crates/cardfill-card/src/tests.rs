//! Merge tests on the real cards of `tests/fixtures/cases`, and properties of the merge.
use cardfill_facts::{Source, paths};
use proptest::prelude::*;

use super::*;
use crate::markdown::{content, split_lines};
use crate::vars::tests::full_facts;

/// The case READMEs, as published.
const CASES: &[(&str, &str)] = &[
    (
        "gemma",
        include_str!("../../../tests/fixtures/cases/gemma-2b-it/README.md"),
    ),
    (
        "mistral",
        include_str!("../../../tests/fixtures/cases/mistral-7b-v0.1/README.md"),
    ),
    (
        "peft-default",
        include_str!(
            "../../../tests/fixtures/cases/peft-default-card-llamafactory-ckpt900/README.md"
        ),
    ),
    (
        "peft-tinyllama",
        include_str!("../../../tests/fixtures/cases/peft-lora-tinyllama-trainer-ckpt/README.md"),
    ),
    (
        "sd",
        include_str!("../../../tests/fixtures/cases/sd-v1-5-diffusers/README.md"),
    ),
    (
        "vit",
        include_str!("../../../tests/fixtures/cases/trainer-vit-base-riego/README.md"),
    ),
    (
        "whisper",
        include_str!("../../../tests/fixtures/cases/trainer-whisper-tiny-nob/README.md"),
    ),
    (
        "co2-scalar",
        include_str!(
            "../../../tests/fixtures/cases/hub-readmes/co2_scalar_autotrain__YXHugging_autotrain-xlm-roberta-base-reviews-672119801.md"
        ),
    ),
    (
        "co2-mapping",
        include_str!(
            "../../../tests/fixtures/cases/hub-readmes/co2_structured_v100__GeoffVdr_whisper-medium-nlcv11.md"
        ),
    ),
    (
        "hubtemplate",
        include_str!(
            "../../../tests/fixtures/cases/hub-readmes/hubtemplate_empty__96harsh56_bert_test1.md"
        ),
    ),
    (
        "trainer8",
        include_str!(
            "../../../tests/fixtures/cases/hub-readmes/trainer_multigpu8__AlekseyKorshuk_1.3b-dalio-principles-book.md"
        ),
    ),
];

/// huggingface_hub's `modelcard_template.md`, unmodified.
const HF_TEMPLATE: &str = include_str!("../../../tests/fixtures/hf-modelcard-template.md");

fn opts() -> FillOptions {
    FillOptions::default()
}

fn run(card: &str, facts: &Facts) -> Filled {
    fill(Some(card), None, facts, &opts()).unwrap()
}

/// Whether a line of the original card is one cardfill may own: a placeholder value.
fn owned_line(c: &str) -> bool {
    let value = markdown::label(c).map_or(c, |(_, v)| &c[v..]);
    let value = value.split("<!--").next().unwrap_or("");
    !c.trim().is_empty() && markdown::is_placeholder(value)
}

/// Every line of `orig` that a person wrote appears in `new`, byte for byte and in order
/// (the last line may have gained a line ending).
fn assert_human_lines_survive(orig: &str, new: &str) {
    let new_lines = split_lines(new);
    let orig_lines = split_lines(orig);
    let mut at = 0;
    for (i, line) in orig_lines.iter().enumerate() {
        if owned_line(content(line)) {
            continue;
        }
        let last_without_ending = i + 1 == orig_lines.len() && content(line) == line;
        let found = new_lines[at..]
            .iter()
            .position(|n| n == line || (last_without_ending && content(n) == line.as_str()));
        match found {
            Some(p) => at += p + 1,
            None => panic!("human line {i} lost: {line:?}"),
        }
    }
}

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[test]
fn every_case_keeps_human_bytes_and_is_idempotent() {
    for (name, text) in CASES {
        for card in [text.to_string(), crlf(text)] {
            for facts in [full_facts(), Facts::new()] {
                let first = run(&card, &facts);
                assert_human_lines_survive(&card, &first.text);
                let second = run(&first.text, &facts);
                assert_eq!(
                    first.text, second.text,
                    "{name}: second run changed the card"
                );
                assert!(
                    second.changes.iter().all(|c| c.kind == ChangeKind::Kept),
                    "{name}: {:?}",
                    second.changes
                );
                if card.contains("\r\n") {
                    let lone_lf = first.text.replace("\r\n", "").contains('\n');
                    assert!(!lone_lf, "{name}: a line without CRLF was added");
                }
                assert!(frontmatter::find(&first.text).is_some() || facts.is_empty());
            }
        }
    }
}

#[test]
fn empty_facts_change_nothing() {
    for (name, text) in CASES {
        assert_eq!(run(text, &Facts::new()).text, *text, "{name}");
    }
}

#[test]
fn hub_template_card_is_filled_in_place() {
    let card = CASES.iter().find(|c| c.0 == "peft-default").unwrap().1;
    let out = run(card, &full_facts()).text;
    let env = out.split("## Environmental Impact").nth(1).unwrap();
    let env = env.split("## Technical").next().unwrap();
    insta::assert_snapshot!(env, @r"


    <!-- Total emissions (in grams of CO2eq) and additional considerations, such as electricity usage, go here. Edit the suggested text below accordingly -->

    Carbon emissions can be estimated using the [Machine Learning Impact calculator](https://mlco2.github.io/impact#compute) presented in [Lacoste et al. (2019)](https://arxiv.org/abs/1910.09700).

    - **Hardware Type:** 8 × NVIDIA H100 80GB HBM3 <!-- cardfill:hardware_type -->
    - **Hours used:** 12.5 hours wall clock (100 GPU-hours) <!-- cardfill:hours_used -->
    - **Cloud Provider:** AWS <!-- cardfill:cloud_provider -->
    - **Compute Region:** us-east-1 (Virginia, United States) <!-- cardfill:cloud_region -->
    - **Carbon Emitted:** 11.3 kg CO2eq (37.5 kWh × PUE 1.10 × 274 g/kWh; AWS us-east-1, EPA eGRID 2022; energy measured) <!-- cardfill:co2_emitted -->

    ");
    // The card's own base_model is the same as the facts': kept without a word.
    assert!(
        out.starts_with("---\nbase_model: meta-llama/Llama-3.2-3B-Instruct\nlibrary_name: peft\n")
    );
}

#[test]
fn trainer_card_gains_sections_where_the_template_puts_them() {
    let card = CASES.iter().find(|c| c.0 == "vit").unwrap().1;
    let filled = run(card, &full_facts());
    let headings: Vec<&str> = filled.text.lines().filter(|l| l.starts_with('#')).collect();
    insta::assert_debug_snapshot!(headings, @r#####"
    [
        "# vit-base-riego",
        "## Model description",
        "## Intended uses & limitations",
        "## Training and evaluation data",
        "## Training procedure",
        "### Training hyperparameters",
        "### Speeds, Sizes, Times",
        "### Training results",
        "### Framework versions",
        "## Environmental Impact",
        "## Technical Specifications",
        "### Model Architecture and Objective",
        "### Compute Infrastructure",
        "#### Hardware",
    ]
    "#####);
    let added: Vec<String> = filled
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Added)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        added,
        [
            "added section `Speeds, Sizes, Times`",
            "added section `Environmental Impact`",
            "added section `Technical Specifications`"
        ]
    );
}

#[test]
fn human_values_are_kept_unless_forced() {
    let card = "---\nbase_model: someone/else  # their pick\nlicense: mit\n---\n# M\n\n## Model Details\n\n### Model Description\n\n- **Model type:** causal LM\n- **Finetuned from model:** [More Information Needed]\n";
    let kept = run(card, &full_facts());
    assert!(kept.text.contains("- **Model type:** causal LM\n"));
    assert!(
        kept.text
            .contains("base_model: someone/else  # their pick\n")
    );
    let notes: Vec<String> = kept
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Kept)
        .map(ToString::to_string)
        .collect();
    insta::assert_debug_snapshot!(notes, @r#"
    [
        "kept front matter `base_model` as written (`someone/else`); cardfill has `meta-llama/Llama-2-7b-hf` (from derived: test); --force replaces it",
        "kept model_type as written (`causal LM`); cardfill has `llama (LlamaForCausalLM)`; --force replaces it",
    ]
    "#);
    let forced = fill(
        Some(card),
        None,
        &full_facts(),
        &FillOptions {
            force: true,
            ..opts()
        },
    )
    .unwrap();
    assert!(
        forced
            .text
            .contains("- **Model type:** llama (LlamaForCausalLM) <!-- cardfill:model_type -->\n")
    );
    assert!(
        forced
            .text
            .contains("base_model: meta-llama/Llama-2-7b-hf  # cardfill\n")
    );
    assert!(forced.text.contains("license: mit\n"));
    let replaced = forced
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Replaced)
        .count();
    assert_eq!(replaced, 2);
    // Forced values are cardfill's now: a normal rerun keeps them and changes nothing.
    assert_eq!(run(&forced.text, &full_facts()).text, forced.text);
}

#[test]
fn marked_values_are_refreshed_and_left_alone_when_unknown() {
    let first = fill(None, None, &full_facts(), &opts()).unwrap();
    let mut later = full_facts();
    later.set(paths::RUN_HOURS, 20.0, Source::flag("--hours"));
    later.set(paths::RUN_GPU_HOURS, 160.0, Source::derived("hours × GPUs"));
    let second = run(&first.text, &later);
    assert!(second.text.contains(
        "- **Hours used:** 20 hours wall clock (160 GPU-hours) <!-- cardfill:hours_used -->"
    ));
    assert_eq!(
        second.changes.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [ChangeKind::Refreshed]
    );
    // Facts that are unknown now leave cardfill's earlier values as they were.
    let mut hours_only = Facts::new();
    hours_only.set(paths::RUN_HOURS, 12.5, Source::flag("--hours"));
    hours_only.set(paths::RUN_GPU_HOURS, 100.0, Source::derived("hours × GPUs"));
    let third = run(&first.text, &hours_only);
    assert_eq!(third.text, first.text);
    let stale: Vec<&str> = third
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Stale)
        .map(|c| c.what.as_str())
        .collect();
    assert!(stale.contains(&"model_specs"), "{stale:?}");
    assert!(third.changes.iter().all(|c| c.kind == ChangeKind::Stale));
}

#[test]
fn a_new_card_from_huggingface_hub_template_renders_unmodified() {
    let empty = fill(None, Some(HF_TEMPLATE), &Facts::new(), &opts()).unwrap();
    assert!(
        empty
            .text
            .starts_with("---\n# For reference on model card metadata")
    );
    assert!(empty.text.contains("# Model Card for Model ID\n"));
    // Every field falls back to the template's own default.
    assert_eq!(empty.text.matches("[More Information Needed]").count(), 39);
    let full = fill(None, Some(HF_TEMPLATE), &full_facts(), &opts()).unwrap();
    assert!(full.text.contains(
        "- **Training regime:** bf16 mixed precision <!-- cardfill:training_regime --> <!--fp32"
    ));
    assert!(
        full.text
            .contains("\n#### Hardware\n\n<!-- cardfill:begin hardware_requirements -->\n")
    );
    let meta = &full.text[..frontmatter::find(&full.text).unwrap().end];
    insta::assert_snapshot!(meta, @r#"
    ---
    # For reference on model card metadata, see the spec: https://github.com/huggingface/hub-docs/blob/main/modelcard.md?plain=1
    # Doc / guide: https://huggingface.co/docs/hub/model-cards
    base_model: meta-llama/Llama-2-7b-hf  # cardfill
    library_name: transformers  # cardfill
    co2_eq_emissions:  # cardfill
      emissions: 11302.5
      source: cardfill (measured)
      training_type: fine-tuning
      geographical_location: Virginia, United States
      hardware_used: "8 × NVIDIA H100 80GB HBM3"
      energy_consumed_it: 37.5
      pue: 1.1
      grid_intensity: 274
      grid_intensity_source: EPA eGRID 2022
    ---
    "#);
    assert_eq!(run(&full.text, &full_facts()).text, full.text);
    // The same card merged again with the template given stays the same too.
    let again = fill(Some(&full.text), Some(HF_TEMPLATE), &full_facts(), &opts()).unwrap();
    assert_eq!(again.text, full.text);
}

#[test]
fn default_template_keeps_the_seed_order() {
    let card = fill(None, None, &Facts::new(), &opts()).unwrap().text;
    let top: Vec<&str> = card.lines().filter(|l| l.starts_with("## ")).collect();
    insta::assert_debug_snapshot!(top, @r#####"
    [
        "## Table of Contents",
        "## Model Details",
        "## Uses",
        "## Bias, Risks, and Limitations",
        "## Training Details",
        "## Evaluation",
        "## Model Examination",
        "## Environmental Impact",
        "## Technical Specifications",
        "## Citation",
        "## Glossary",
        "## More Information",
        "## Model Card Authors",
        "## Model Card Contact",
        "## How to Get Started with the Model",
    ]
    "#####);
    assert!(frontmatter::find(&card).is_none());
}

#[test]
fn errors_name_the_file_and_the_fix() {
    let bad_yaml = fill(Some("---\na: [1\n---\n"), None, &full_facts(), &opts()).unwrap_err();
    insta::assert_snapshot!(bad_yaml, @"`README.md` has front matter the Hub cannot read (did not find expected ',' or ']' at line 2 column 1, while parsing a flow sequence at line 1 column 4): fix the YAML between the `---` lines");
    let list = fill(Some("---\n- a\n---\n"), None, &full_facts(), &opts()).unwrap_err();
    insta::assert_snapshot!(list, @"`README.md` has front matter the Hub cannot read (the metadata block should be a mapping of keys to values): fix the YAML between the `---` lines");
    let template = fill(
        None,
        Some("{{ x | nope }}"),
        &full_facts(),
        &FillOptions {
            template_name: "my.md".into(),
            ..opts()
        },
    )
    .unwrap_err();
    insta::assert_snapshot!(template, @"`my.md` is not a usable template: unknown filter: filter nope is unknown (line 1)");
}

#[test]
fn front_matter_edits_touch_only_cardfill_keys() {
    let card = "---\r\n# top comment\r\nlicense: apache-2.0 # why\r\ntags:\r\n- a\r\nlibrary_name:\r\nwidget:\r\n  - text: \"hi\"\r\n---\r\nbody\r\n";
    let out = run(card, &full_facts()).text;
    let meta = &out[..frontmatter::find(&out).unwrap().end];
    insta::assert_snapshot!(meta.replace('\r', "␍"), @r#"
    ---␍
    # top comment␍
    license: apache-2.0 # why␍
    tags:␍
    - a␍
    library_name: transformers  # cardfill␍
    widget:␍
      - text: "hi"␍
    base_model: meta-llama/Llama-2-7b-hf  # cardfill␍
    co2_eq_emissions:  # cardfill␍
      emissions: 11302.5␍
      source: cardfill (measured)␍
      training_type: fine-tuning␍
      geographical_location: Virginia, United States␍
      hardware_used: "8 × NVIDIA H100 80GB HBM3"␍
      energy_consumed_it: 37.5␍
      pue: 1.1␍
      grid_intensity: 274␍
      grid_intensity_source: EPA eGRID 2022␍
    ---␍
    "#);
    assert!(out[meta.len()..].starts_with("body\r\n"));
}

#[test]
fn a_local_path_as_base_model_is_replaced() {
    let card = "---\nbase_model: /home/me/models/llama\nlibrary_name: peft\n---\n# Card\n";
    let out = run(card, &full_facts());
    assert!(out.text.starts_with(
        "---\nbase_model: meta-llama/Llama-2-7b-hf  # cardfill\nlibrary_name: peft\n"
    ));
    insta::assert_snapshot!(out.changes[0], @"filled front matter `base_model`: meta-llama/Llama-2-7b-hf (replacing `/home/me/models/llama`, which the Hub rejects)");
}

#[test]
fn a_card_that_is_only_front_matter_keeps_it_readable() {
    let card = "---\nlicense: mit\n---";
    let out = run(card, &full_facts()).text;
    let span = frontmatter::find(&out).unwrap();
    assert!(out[span.end..].starts_with("## Model Details\n"), "{out}");
    assert_eq!(run(&out, &full_facts()).text, out);
}

#[test]
fn a_code_block_left_open_does_not_make_reruns_grow() {
    let card = "# Card\n\n```python\nimport x\n";
    let first = run(card, &full_facts());
    assert_human_lines_survive(card, &first.text);
    assert_eq!(run(&first.text, &full_facts()).text, first.text);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn human_text_around_owned_regions_survives(
        before in proptest::collection::vec("(```|~~~|<!--|-->|## |[a-zA-Z0-9 #*:`<>!_-]){0,12}", 0..8),
        after in proptest::collection::vec("(```|~~~|<!--|-->|## |[a-zA-Z0-9 #*:`<>!_-]){0,12}", 0..8),
        windows in any::<bool>(),
        trailing in any::<bool>(),
    ) {
        let le = if windows { "\r\n" } else { "\n" };
        let mut card = format!("Intro{le}");
        for l in &before {
            card.push_str(l);
            card.push_str(le);
        }
        for l in ["## Environmental Impact", "", "- **Hours used:** [More Information Needed]", "",
                  "### Model Architecture and Objective", "", "[More Information Needed]", ""] {
            card.push_str(l);
            card.push_str(le);
        }
        card.push_str(&after.join(le));
        if trailing {
            card.push_str(le);
        }
        let mut facts = Facts::new();
        facts.set(paths::RUN_HOURS, 3.0, Source::flag("--hours"));
        facts.set(paths::PARAMETERS_TOTAL, 1234u64, Source::derived("test"));
        let first = run(&card, &facts);
        assert_human_lines_survive(&card, &first.text);
        prop_assert!(first.text.contains("3 hours wall clock <!-- cardfill:hours_used -->"));
        let second = run(&first.text, &facts);
        prop_assert_eq!(&first.text, &second.text);
        if windows {
            prop_assert!(!first.text.replace("\r\n", "").contains('\n'));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn unknown_front_matter_keys_keep_order_values_and_comments(
        keys in proptest::collection::vec(("[a-z][a-z_]{0,8}", "[a-zA-Z0-9 ._/-]{0,12}", any::<bool>()), 0..8),
        windows in any::<bool>(),
    ) {
        let le = if windows { "\r\n" } else { "\n" };
        let mut meta = String::new();
        let mut seen = std::collections::BTreeMap::new();
        for (k, v, comment) in &keys {
            let ours = ["base_model", "library_name", "co2_eq_emissions"].contains(&k.as_str());
            if ours || seen.contains_key(k) {
                continue;
            }
            seen.insert(k.clone(), v.trim().to_owned());
            if *comment {
                meta.push_str(&format!("# about {k}{le}"));
            }
            meta.push_str(&format!("{k}: \"{}\"  # note{le}", v.trim()));
        }
        let card = format!("---{le}{meta}---{le}# Card{le}");
        let first = run(&card, &full_facts());
        assert_human_lines_survive(&card, &first.text);
        let span = frontmatter::find(&first.text).unwrap();
        let parsed = frontmatter::parse(&first.text[span.body_start..span.body_end]).unwrap();
        for (k, v) in &seen {
            prop_assert_eq!(parsed[k.as_str()].as_str(), Some(v.as_str()));
        }
        prop_assert_eq!(&parsed["base_model"], "meta-llama/Llama-2-7b-hf");
        prop_assert_eq!(&run(&first.text, &full_facts()).text, &first.text);
    }
}

#[test]
fn a_byte_order_mark_stays_first_and_its_block_is_merged() {
    let card = "\u{feff}---\r\nlicense: mit\r\nlanguage: en\r\ntags:\r\n- a\r\n---\r\n# Model\r\n";
    let out = run(card, &full_facts()).text;
    assert!(out.starts_with("\u{feff}---\r\nlicense: mit\r\nlanguage: en\r\ntags:\r\n- a\r\n"));
    assert_eq!(out.matches("---\r\n").count(), 2, "one block: {out}");
    assert_eq!(out.matches('\u{feff}').count(), 1);
    let again = run(&out, &full_facts()).text;
    assert_eq!(again, out);
}

#[test]
fn an_empty_block_is_filled_in_place() {
    let out = run("---\n---\n# Model\n", &full_facts()).text;
    let span = frontmatter::find(&out).unwrap();
    assert_eq!(span.body_start, 4);
    assert!(out[span.end..].starts_with("# Model\n"), "{out}");
    assert!(!out[span.end..].contains("---\n"), "{out}");
}

#[test]
fn unclosed_blocks_and_repeated_keys_are_refused() {
    let unclosed = fill(
        Some("---\nlicense: mit\n\n# Model\n"),
        None,
        &full_facts(),
        &opts(),
    )
    .unwrap_err();
    insta::assert_snapshot!(unclosed, @"`README.md`: the front matter opened by `---` on line 1 is never closed: add a line `---` after the metadata, or remove line 1");
    let twice = fill(
        Some("---\nlicense: mit\ntags:\n- a\nlicense: mit\n---\n"),
        None,
        &full_facts(),
        &opts(),
    )
    .unwrap_err();
    insta::assert_snapshot!(twice, @"`README.md`:5: front matter key `license` is repeated (first on line 2) and the Hub rejects repeated keys: keep one of them");
}

#[test]
fn a_co2_line_of_other_hours_is_cleared_when_it_cannot_be_worked_out() {
    let first = run("# Model\n", &full_facts()).text;
    assert!(first.contains("co2_eq_emissions"));
    let mut facts = Facts::new();
    facts.set(paths::RUN_HOURS, 99.0, Source::flag("--hours"));
    let second = fill(Some(&first), None, &facts, &opts()).unwrap();
    assert!(!second.text.contains("co2_eq_emissions"), "{}", second.text);
    assert!(
        second.text.contains(
            "**Carbon Emitted:** [More Information Needed] <!-- cardfill:co2_emitted -->"
        )
    );
    assert!(second.changes.iter().any(|c| c.kind == ChangeKind::Cleared));
    assert_eq!(run(&second.text, &facts).text, second.text);
    // The same hours again: the line stays as the earlier run left it.
    let same = fill(Some(&first), None, &Facts::new(), &opts()).unwrap();
    assert!(same.text.contains("co2_eq_emissions"));
}
