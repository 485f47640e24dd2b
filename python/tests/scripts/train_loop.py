"""A plain PyTorch loop inside `cardfill.track`.

python train_loop.py OUTPUT_DIR
"""

from __future__ import annotations

import logging
import sys

import cardfill
from common import hub_dataset, tiny_base_model


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM

    out = sys.argv[1]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model())
    train = hub_dataset("train", 16)
    val = hub_dataset("validation", 8)
    hyperparameters = {"learning_rate": 1e-3, "batch_size": 4, "epochs": 1}
    with cardfill.track(out, model=model, datasets=[train], hyperparameters=hyperparameters) as t:
        optimizer = torch.optim.AdamW(model.parameters(), lr=hyperparameters["learning_rate"])
        step = 0
        for batch in DataLoader(train.with_format("torch"), batch_size=4):
            loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
        with torch.no_grad():
            batch = next(iter(DataLoader(val.with_format("torch"), batch_size=8)))
            val_loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        t.log_eval("loss", val_loss.item(), step=step, dataset=val)
        model.save_pretrained(out)
    print(f"trained {step} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
