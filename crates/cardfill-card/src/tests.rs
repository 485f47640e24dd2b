//! Merge tests on the real cards of `tests/fixtures/cases`.
use super::*;
use crate::vars::tests::full_facts;

/// The case READMEs, as published.
const CASES: &[(&str, &str)] = &[
    ("gemma", include_str!("../../../tests/fixtures/cases/gemma-2b-it/README.md")),
    ("mistral", include_str!("../../../tests/fixtures/cases/mistral-7b-v0.1/README.md")),
    ("peft-default", include_str!("../../../tests/fixtures/cases/peft-default-card-llamafactory-ckpt900/README.md")),
    ("peft-tinyllama", include_str!("../../../tests/fixtures/cases/peft-lora-tinyllama-trainer-ckpt/README.md")),
    ("sd", include_str!("../../../tests/fixtures/cases/sd-v1-5-diffusers/README.md")),
    ("vit", include_str!("../../../tests/fixtures/cases/trainer-vit-base-riego/README.md")),
    ("whisper", include_str!("../../../tests/fixtures/cases/trainer-whisper-tiny-nob/README.md")),
    ("co2-scalar", include_str!("../../../tests/fixtures/cases/hub-readmes/co2_scalar_autotrain__YXHugging_autotrain-xlm-roberta-base-reviews-672119801.md")),
    ("co2-mapping", include_str!("../../../tests/fixtures/cases/hub-readmes/co2_structured_v100__GeoffVdr_whisper-medium-nlcv11.md")),
    ("hubtemplate", include_str!("../../../tests/fixtures/cases/hub-readmes/hubtemplate_empty__96harsh56_bert_test1.md")),
    ("trainer8", include_str!("../../../tests/fixtures/cases/hub-readmes/trainer_multigpu8__AlekseyKorshuk_1.3b-dalio-principles-book.md")),
];

/// huggingface_hub's `modelcard_template.md`, unmodified.
const HF_TEMPLATE: &str = include_str!("../../../tests/fixtures/hf-modelcard-template.md");

#[test]
fn dump() {
    for (name, text) in CASES {
        let f = fill(Some(text), None, &full_facts(), &FillOptions::default()).unwrap();
        std::fs::write(format!("/tmp/cf-{name}.md"), &f.text).unwrap();
        let g = fill(Some(&f.text), None, &full_facts(), &FillOptions::default()).unwrap();
        assert_eq!(f.text, g.text, "{name}");
    }
    let f = fill(None, None, &full_facts(), &FillOptions::default()).unwrap();
    std::fs::write("/tmp/cf-fresh.md", &f.text).unwrap();
    let f = fill(None, Some(HF_TEMPLATE), &full_facts(), &FillOptions::default()).unwrap();
    std::fs::write("/tmp/cf-fresh-hf.md", &f.text).unwrap();
}
