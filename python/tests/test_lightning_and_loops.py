"""Lightning's callback and `cardfill.track` in a plain loop, on CPU with the real frameworks."""

from __future__ import annotations

from conftest import assert_human_lines_kept, fact, inspect, run_script, warnings_of


def test_lightning_callback_records_and_fills(out, env):
    result = run_script("train_lightning.py", env, str(out))
    assert "trained 4 steps" in result.stdout
    assert warnings_of(result.stderr) == [], result.stderr

    facts = inspect(out, env)
    sources = facts["sources"]
    assert fact(facts, "model.base_model") == "tiny-org/tiny-llama"
    assert sources["model.base_model"].startswith(
        "training process: lightning: model.model.name_or_path"
    )
    hp = fact(facts, "training.hyperparameters")
    assert hp["learning_rate"] == 0.001 and hp["max_steps"] == 4
    assert fact(facts, "training.datasets") == [
        {"id": "tiny-org/tiny-stories", "config": "default", "split": "train"}
    ]
    (val,) = fact(facts, "evaluation.results")
    assert val["metric"] == "val_loss" and val["step"] == 4 and val["task"] == "text-generation"
    assert fact(facts, "training.software")["lightning"]
    assert fact(facts, "parameters.total") > 5000
    assert sources["parameters.total"].startswith("training process: lightning")
    assert sources["run.hours"].startswith(".cardfill")

    card = (out / "README.md").read_text()
    assert_human_lines_kept(card)
    assert "base_model: tiny-org/tiny-llama" in card
    assert "**Hours used:**" in card
    assert "- lightning " in card


def test_track_records_a_plain_loop(out, env):
    result = run_script("train_loop.py", env, str(out))
    assert "trained 4 steps" in result.stdout
    assert warnings_of(result.stderr) == [], result.stderr

    facts = inspect(out, env)
    sources = facts["sources"]
    assert fact(facts, "model.base_model") == "tiny-org/tiny-llama"
    assert sources["model.base_model"].startswith("training process: track: model.name_or_path")
    assert fact(facts, "training.hyperparameters") == {
        "learning_rate": 0.001,
        "batch_size": 4,
        "epochs": 1,
    }
    assert fact(facts, "training.datasets")[0]["id"] == "tiny-org/tiny-stories"
    (loss,) = fact(facts, "evaluation.results")
    assert loss["metric"] == "loss" and loss["step"] == 4
    assert loss["dataset"]["split"] == "validation"
    # The weights were saved inside the block: files and live model agree.
    assert fact(facts, "parameters.total") > 5000
    assert "parameters-disagree" not in [w["code"] for w in facts["warnings"]]

    card = (out / "README.md").read_text()
    assert_human_lines_kept(card)
    assert "base_model: tiny-org/tiny-llama" in card
    assert "**Hours used:**" in card
    assert "- torch " in card
