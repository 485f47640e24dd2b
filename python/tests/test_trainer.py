"""A real `transformers.Trainer` on CPU with `CardfillCallback`: the record, the facts, the card,
and `push_to_hub()` against a fake Hub."""

from __future__ import annotations

import json

from conftest import assert_human_lines_kept, fact, inspect, run_script, warnings_of
from fakehub import FakeHub

TRAINING_SOURCE = "training process: transformers: "


def check_training_facts(facts: dict, peft: bool = False) -> None:
    sources = facts["sources"]
    assert fact(facts, "model.base_model") == "tiny-org/tiny-llama"
    assert sources["model.base_model"].startswith(TRAINING_SOURCE)
    hp = fact(facts, "training.hyperparameters")
    assert hp["learning_rate"] == 0.001
    assert hp["max_steps"] == 4
    assert hp["gradient_accumulation_steps"] == 2
    assert hp["lr_scheduler_type"] == "cosine"
    assert hp["seed"] == 7
    assert hp["total_train_batch_size"] == 8
    assert "output_dir" not in hp and "hub_token" not in hp
    assert sources["training.hyperparameters"].startswith(
        TRAINING_SOURCE + "TrainingArguments fields that differ from their defaults"
    )
    assert fact(facts, "training.datasets") == [
        {"id": "tiny-org/tiny-stories", "config": "default", "split": "train"}
    ]
    results = fact(facts, "evaluation.results")
    loss = [r for r in results if r["metric"] == "loss"]
    assert len(loss) == 1 and loss[0]["step"] == 4 and loss[0]["value"] > 0
    assert loss[0]["dataset"] == {
        "id": "tiny-org/tiny-stories",
        "config": "default",
        "split": "validation",
    }
    assert loss[0]["task"] == "text-generation"
    software = fact(facts, "training.software")
    for name in ("python", "torch", "transformers", "datasets"):
        assert software[name], name
    if peft:
        assert software["peft"]
        assert fact(facts, "model.class") == "PeftModelForCausalLM"
        assert fact(facts, "parameters.trainable") < 5000
    else:
        assert fact(facts, "model.class") == "LlamaForCausalLM"
    assert sources["training.software"].startswith(TRAINING_SOURCE)
    assert fact(facts, "training.world_size") == 1
    # Hours from the training record, train begin to train end.
    assert fact(facts, "run.hours") >= 0
    assert sources["run.hours"].startswith(".cardfill")


def test_trainer_fills_the_card_with_what_the_process_knows(out, env):
    result = run_script("train_trainer.py", env, str(out))
    assert "trained 4 steps" in result.stdout
    assert warnings_of(result.stderr) == [], result.stderr

    facts = inspect(out, env)
    check_training_facts(facts)
    # The saved weights agree with the live model: no warning about parameters.
    codes = [w["code"] for w in facts["warnings"]]
    assert "parameters-disagree" not in codes, facts["warnings"]
    assert fact(facts, "parameters.total") > 5000

    record = [p for p in (out / ".cardfill").iterdir() if p.suffix == ".json"]
    assert len(record) == 1, "one node, one record"
    data = json.loads(record[0].read_text())
    assert data["kind"] == "training" and "open_counters_mj" not in data

    card = (out / "README.md").read_text()
    assert_human_lines_kept(card)
    assert "base_model: tiny-org/tiny-llama" in card
    assert "[tiny-org/tiny-llama](https://huggingface.co/tiny-org/tiny-llama)" in card
    assert "**Hours used:**" in card
    assert "- transformers " in card and "- torch " in card
    check_training_card(card)


def check_training_card(card: str) -> None:
    """What the training process told cardfill, as the card shows it."""
    front = card.split("---")[1]
    # Hyperparameters: the effective batch and the non-default values.
    assert "= 8 effective" in card, card
    assert "- `learning_rate`: 0.001" in card
    assert "- `lr_scheduler_type`: cosine" in card
    # Datasets (Hub ids) and the evaluation loss in the metadata the Hub reads.
    assert "tiny-org/tiny-stories" in front
    assert "model-index:" in front
    assert "type: loss" in front


def test_peft_lora_run_records_the_base_model_and_trainable_parameters(out, env):
    result = run_script("train_trainer.py", env, str(out), "--peft")
    assert warnings_of(result.stderr) == [], result.stderr
    assert (out / "adapter_config.json").exists()
    facts = inspect(out, env)
    check_training_facts(facts, peft=True)
    # The adapter file holds the adapter only: no disagreement with the live model.
    assert "parameters-disagree" not in [w["code"] for w in facts["warnings"]], facts["warnings"]
    assert fact(facts, "parameters.trainable") == fact(facts, "parameters.total")
    # The base model's own count: what the Trainer run without PEFT counts in its weights.
    assert fact(facts, "parameters.base") > 5000
    assert facts["sources"]["parameters.base"].startswith(TRAINING_SOURCE)
    card = (out / "README.md").read_text()
    assert_human_lines_kept(card)
    assert "base_model: tiny-org/tiny-llama" in card


def test_push_to_hub_uploads_the_filled_card_without_records_or_backup(out, env):
    with FakeHub() as hub:
        env = dict(env, HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_fake")
        del env["HF_HUB_OFFLINE"]
        result = run_script(
            "train_trainer.py", env, str(out), "--push", "tester/tiny-stories", "--eval-after"
        )
    assert hub.unknown == [], hub.unknown
    assert warnings_of(result.stderr) == [], result.stderr
    assert len(hub.commits) == 1, hub.requests
    files = hub.commits[0]["files"]
    assert "model.safetensors" in files and "config.json" in files
    assert "README.md.bak" not in files
    assert not [f for f in files if f.startswith(".cardfill")], sorted(files)
    # Locally they are there: the upload left them out.
    assert (out / ".cardfill").is_dir() and (out / "README.md.bak").exists()

    # trainer.evaluate() after training reached the record before the card was filled.
    (loss,) = [r for r in fact(inspect(out, env), "evaluation.results") if r["metric"] == "loss"]
    assert loss["step"] == 4 and loss["dataset"]["split"] == "validation"

    uploaded = files["README.md"].decode()
    assert uploaded == (out / "README.md").read_text()
    assert_human_lines_kept(uploaded)
    assert "base_model: tiny-org/tiny-llama" in uploaded
    assert "<!-- cardfill" in uploaded
    assert "**Hours used:**" in uploaded
    check_training_card(uploaded)


def test_trl_sft_trainer_is_a_trainer_for_the_callback(out, env):
    result = run_script("train_trl.py", env, str(out))
    assert "trained 2 steps" in result.stdout
    assert warnings_of(result.stderr) == [], result.stderr
    facts = inspect(out, env)
    assert fact(facts, "model.base_model") == "tiny-org/tiny-llama"
    assert fact(facts, "training.software")["trl"]
    hp = fact(facts, "training.hyperparameters")
    assert hp["learning_rate"] == 0.001 and hp["max_steps"] == 2
    assert "accelerator_config" not in hp, "config objects at their defaults are left out"
    assert fact(facts, "training.datasets")[0]["id"] == "tiny-org/tiny-stories"
    card = (out / "README.md").read_text()
    assert_human_lines_kept(card)
    assert "base_model: tiny-org/tiny-llama" in card
    assert "- trl " in card
