"""cardfill: fill a Hugging Face model card from the evidence a training run leaves behind.

Every feature lives in the `cardfill` binary that this package's wheel installs; this package
finds it and calls it. It imports nothing outside the standard library, and never raises into
the training that calls it: a missing binary, a failure, a timeout or an unwritable directory
is logged once as a warning.

    with cardfill.track(output_dir, model=model, datasets=["org/data"],
                        hyperparameters={"learning_rate": 3e-4}):
        train()

    cardfill.fill(output_dir, region="FR")

Framework callbacks: `cardfill.integrations.transformers.CardfillCallback` and
`cardfill.integrations.lightning.CardfillCallback`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

from cardfill import _facts
from cardfill._find_bin import find_cardfill_bin
from cardfill._run import Run, flags_to_args

__all__ = ["Tracker", "fill", "find_cardfill_bin", "track"]


def fill(
    output_dir: os.PathLike[str] | str,
    *,
    timeout: float | None = None,
    **flags: Any,
) -> bool:
    """Runs `cardfill fill OUTPUT_DIR` with `flags` (`region="FR"` → `--region FR`,
    `no_backup=True` → `--no-backup`). Returns True when the card was written; a failure is
    logged as a warning, never raised. Only the main process (RANK 0) fills."""
    return Run(output_dir, timeout=timeout).fill(*flags_to_args(flags))


class Tracker:
    """What `track()` yields: add evaluation results or change what is recorded."""

    def __init__(self, run: Run, model: Any, datasets: Iterable[Any], hyperparameters: Any):
        self.run = run
        self.model = model
        self.datasets = list(datasets or ())
        self.hyperparameters = dict(hyperparameters or {})
        self.evaluation: list = []

    def log_eval(
        self,
        metric: str,
        value: float,
        step: int | None = None,
        dataset: Any = None,
        task: str | None = None,
    ) -> None:
        """Records an evaluation result (the latest value of each metric and dataset counts)."""
        ref = _facts.dataset_ref(dataset)
        self.evaluation = [
            e for e in self.evaluation if (e["metric"], e["dataset"]) != (metric, ref)
        ]
        self.evaluation.append(
            {"task": task, "dataset": ref, "metric": metric, "value": float(value), "step": step}
        )

    def info(self) -> dict:
        info = _facts.base_info("track")
        try:
            _facts.model_facts(self.model, info)
            _facts.datasets_facts(self.datasets, info, "the datasets given to cardfill.track")
            _facts.hyperparameters_facts(
                self.hyperparameters, info, "the hyperparameters given to cardfill.track"
            )
            if self.evaluation:
                task = _facts.task_of(self.model)
                info["evaluation"] = [dict(e, task=e["task"] or task) for e in self.evaluation]
                info["read"]["evaluation"] = "Tracker.log_eval calls"
        except Exception as err:  # a strange model or dataset must not cost the record
            self.run.call.problem(f"could not read the training facts: {err}")
        return info


@contextlib.contextmanager
def track(
    output_dir: os.PathLike[str] | str,
    model: Any = None,
    datasets: Iterable[Any] = (),
    hyperparameters: dict | None = None,
    *,
    fill: bool = True,
    fill_args: Iterable[str] = (),
    timeout: float | None = None,
) -> Iterator[Tracker]:
    """Records a training run in a plain loop or under Accelerate.

    On entry, local rank 0 of each node opens its node's training record in
    `OUTPUT_DIR/.cardfill/` (hardware, start, GPU energy counters). On exit, it closes it; the
    main process adds the model's base model, class and parameters, the Hub datasets, the
    hyperparameters, evaluation results, world size and framework versions, then runs
    `cardfill fill OUTPUT_DIR` (unless `fill=False`, or the block raised). Exceptions of the
    block pass through unchanged.
    """
    run = Run(output_dir, timeout=timeout, fill_args=list(fill_args))
    tracker = Tracker(run, model, datasets, hyperparameters)
    run.begin()
    ok = False
    try:
        yield tracker
        ok = True
    finally:
        run.end(tracker.info() if run.is_main else None)
        if ok and fill:
            run.fill()
