"""`CardfillCallback` for Lightning (`lightning.pytorch`, or the older `pytorch_lightning`).

    from cardfill.integrations.lightning import CardfillCallback

    trainer = L.Trainer(..., callbacks=[CardfillCallback("runs/my-model")])
    trainer.fit(module, datamodule)

- Fit start: local rank 0 of each node opens its node's training record in
  `OUTPUT_DIR/.cardfill/`.
- Validation end: the logged `val*` metrics are kept (the latest value of each).
- Fit end: each node's record is closed; global rank 0 adds what it knows (base model, class
  and parameters of the module or its `model`, Hub datasets, the module's `hparams` and the
  Trainer's settings, validation metrics, world size, framework versions) and runs
  `cardfill fill OUTPUT_DIR`.

It never raises into training: every problem is one warning line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

try:
    from lightning.pytorch import Callback
except ImportError:  # pragma: no cover - the older package name
    from pytorch_lightning import Callback

from cardfill import _facts
from cardfill._run import Run, jsonable

# Trainer settings that are hyperparameters.
_TRAINER_SETTINGS = (
    "max_epochs",
    "max_steps",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "precision",
)


class CardfillCallback(Callback):
    """Records the run and fills the model card; see the module documentation.

    Args:
        output_dir: the checkpoint directory (default: the Trainer's `default_root_dir`).
        datasets: Hub ids (or `datasets` objects) trained on, when the dataloaders do not say.
        hyperparameters: more hyperparameters to record.
        fill: run `cardfill fill` on fit end.
        fill_args: more arguments for `cardfill fill`.
        timeout: seconds one call of the binary may take (`$CARDFILL_TIMEOUT`, default 120).
        executable: the cardfill binary (default: the one installed with this package).
    """

    def __init__(
        self,
        output_dir: str | None = None,
        datasets: Iterable[Any] = (),
        hyperparameters: dict | None = None,
        fill: bool = True,
        fill_args: Iterable[str] = (),
        timeout: float | None = None,
        executable: str | None = None,
    ):
        self.output_dir = output_dir
        self.datasets = list(datasets)
        self.hyperparameters = dict(hyperparameters or {})
        self.fill = fill
        self.fill_args = list(fill_args)
        self.timeout = timeout
        self.executable = executable
        self.run: Run | None = None
        self.evaluation: dict = {}

    def _run_for(self, trainer: Any) -> Run:
        if self.run is None:
            output_dir = self.output_dir or getattr(trainer, "default_root_dir", None) or "."
            self.run = Run(
                output_dir,
                timeout=self.timeout,
                executable=self.executable,
                fill_args=self.fill_args,
            )
        return self.run

    def _guard(self, trainer: Any, what: str, action) -> None:
        try:
            action()
        except Exception as err:  # never break the training that called us
            self._run_for(trainer).call.problem(f"{what}: {type(err).__name__}: {err}")

    def on_fit_start(self, trainer, pl_module):
        def begin():
            if getattr(trainer, "local_rank", 0) == 0:
                self._run_for(trainer).begin()

        self._guard(trainer, "training record not opened", begin)

    def on_validation_end(self, trainer, pl_module):
        def keep():
            if getattr(trainer, "sanity_checking", False):
                return
            for name, value in (getattr(trainer, "callback_metrics", None) or {}).items():
                if not name.startswith("val"):
                    continue
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    continue
                self.evaluation[name] = {
                    "metric": name,
                    "value": number,
                    "step": int(getattr(trainer, "global_step", 0)),
                }

        self._guard(trainer, "validation metrics not read", keep)

    def _datasets(self, trainer: Any) -> list:
        if self.datasets:
            return self.datasets
        found = []
        loaders = getattr(trainer, "train_dataloader", None)
        if loaders is not None and not callable(loaders):
            found.append(getattr(loaders, "dataset", None))
        datamodule = getattr(trainer, "datamodule", None)
        for name in ("train_dataset", "dataset"):
            if getattr(datamodule, name, None) is not None:
                found.append(getattr(datamodule, name))
        return [d for d in found if d is not None]

    def _info(self, trainer: Any, pl_module: Any) -> dict:
        info = _facts.base_info("lightning")
        info["world_size"] = int(getattr(trainer, "world_size", 1) or 1)
        info["rank"] = int(getattr(trainer, "global_rank", 0) or 0)
        info["read"]["world_size"] = "Trainer.world_size"
        inner = getattr(pl_module, "model", None)
        _facts.model_facts(pl_module, info)  # also reads the base model of its `model`
        _facts.datasets_facts(self._datasets(trainer), info, "the train dataloader's dataset")
        hparams = {}
        for name, value in dict(getattr(pl_module, "hparams", None) or {}).items():
            if isinstance(value, (str, int, float, bool)) or value is None:
                hparams[name] = value
        for name in _TRAINER_SETTINGS:
            value = getattr(trainer, name, None)
            if value is not None and value != -1:
                hparams[name] = jsonable(value)
        hparams.update(self.hyperparameters)
        _facts.hyperparameters_facts(
            hparams, info, "the LightningModule's hparams and the Trainer's settings"
        )
        if self.evaluation:
            task = _facts.task_of(inner if inner is not None else pl_module)
            info["evaluation"] = [
                dict(e, task=task, dataset=None) for e in self.evaluation.values()
            ]
            info["read"]["evaluation"] = "val* metrics logged by the module (callback_metrics)"
        return info

    def _end(self, trainer: Any, pl_module: Any) -> None:
        if getattr(trainer, "local_rank", 0) != 0:
            return
        run = self._run_for(trainer)
        main = getattr(trainer, "global_rank", 0) == 0
        run.end(self._info(trainer, pl_module) if main else None)
        if main and self.fill:
            os.makedirs(run.output_dir, exist_ok=True)
            run.fill()

    def on_fit_end(self, trainer, pl_module):
        self._guard(trainer, "card not filled", lambda: self._end(trainer, pl_module))

    def on_exception(self, trainer, pl_module, exception):
        # Close the record; the card waits for a finished run.
        def close():
            if getattr(trainer, "local_rank", 0) == 0:
                self._run_for(trainer).end(None)

        self._guard(trainer, "training record not closed", close)
