"""Which `TrainingArguments` reach `training.hyperparameters`."""

from __future__ import annotations

import json


def test_only_changed_settings_and_deepspeed_settings_not_paths(tmp_path):
    from cardfill.integrations.transformers import _hyperparameters
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    assert _hyperparameters(args) == {
        "use_cpu": True,
        "dataloader_pin_memory": False,  # what use_cpu implies
        "total_train_batch_size": 8,
    }
    args = TrainingArguments(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to="none",
        learning_rate=3e-4,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=4,
        lr_scheduler_type="cosine",
        optim="adamw_torch",
        hub_token="hf_secret",
    )
    hp = _hyperparameters(args)
    assert hp["learning_rate"] == 3e-4 and hp["lr_scheduler_type"] == "cosine"
    assert hp["total_train_batch_size"] == 8
    assert "hub_token" not in hp and "output_dir" not in hp
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    args.deepspeed = str(config)
    assert _hyperparameters(args)["deepspeed"] == {"zero_optimization": {"stage": 3}}
    args.deepspeed = str(tmp_path / "missing.json")
    assert "deepspeed" not in _hyperparameters(args)
