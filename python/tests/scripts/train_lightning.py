"""A real Lightning run on CPU with `CardfillCallback`.

python train_lightning.py OUTPUT_DIR
"""

from __future__ import annotations

import logging
import sys

from cardfill.integrations.lightning import CardfillCallback
from common import hub_dataset, tiny_base_model


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import lightning.pytorch as L
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM

    class Module(L.LightningModule):
        def __init__(self, learning_rate: float = 1e-3):
            super().__init__()
            self.save_hyperparameters()
            self.model = AutoModelForCausalLM.from_pretrained(tiny_base_model())

        def training_step(self, batch, _):
            return self.model(input_ids=batch["input_ids"], labels=batch["labels"]).loss

        def validation_step(self, batch, _):
            loss = self.model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
            self.log("val_loss", loss)

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=self.hparams.learning_rate)

    torch.manual_seed(0)
    train = DataLoader(hub_dataset("train", 16).with_format("torch"), batch_size=4)
    val = DataLoader(hub_dataset("validation", 8).with_format("torch"), batch_size=4)
    trainer = L.Trainer(
        max_steps=4,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        val_check_interval=2,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        default_root_dir=sys.argv[1],
        callbacks=[CardfillCallback(sys.argv[1])],
    )
    trainer.fit(Module(), train, val)
    print(f"trained {trainer.global_step} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
