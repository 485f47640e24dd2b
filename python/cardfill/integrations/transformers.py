"""`CardfillCallback` for the Hugging Face `Trainer` (and TRL's trainers, which subclass it).

    from cardfill.integrations.transformers import CardfillCallback

    trainer = Trainer(model=model, args=args, ..., callbacks=[CardfillCallback()])
    trainer.train()
    trainer.push_to_hub()   # uploads the filled card

- Train begin: local rank 0 of each node opens its node's training record in
  `OUTPUT_DIR/.cardfill/` (hardware, start, GPU energy counters).
- Train end: each node's record is closed; the main process adds what it knows (base model,
  model class and parameters, Hub datasets, the `TrainingArguments` that differ from their
  defaults, evaluation metrics of the log history, world size, framework versions), saves
  `trainer_state.json` and runs `cardfill fill OUTPUT_DIR`. `trainer.save_model()` after
  training fills again, so the card sees the saved weights and the metrics of a
  `trainer.evaluate()` after training.
- `push_to_hub()`: the Trainer's `create_model_card()` rewrites `README.md` from scratch just
  before the upload. The callback wraps that method on its Trainer: the card cardfill filled
  is put back (a card cardfill never filled: the Trainer's draft is kept) and filled again,
  so the upload carries the filled card. Uploads of the output directory by the Trainer leave
  out `.cardfill/` (records hold host names, GPU ids and job ids) and `README.md.bak`.

The callback finds its Trainer when the Trainer calls it (`on_init_end`, `on_train_begin`,
`on_push_begin`). It never raises into training: every problem is one warning line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

from transformers import TrainerCallback

from cardfill import _facts
from cardfill._run import Run, jsonable

logger = logging.getLogger("cardfill")

#: What uploads of an output directory by the Trainer leave out.
UPLOAD_IGNORE = [".cardfill", ".cardfill/*", "README.md.bak"]

# TrainingArguments fields that are bookkeeping, not hyperparameters.
_NOT_HYPERPARAMETERS = {
    "output_dir",
    "logging_dir",
    "run_name",
    "report_to",
    "disable_tqdm",
    "overwrite_output_dir",
    "local_rank",
    "do_train",
    "do_eval",
    "do_predict",
    "push_to_hub",
    "resume_from_checkpoint",
    "label_names",
    "include_num_input_tokens_seen",
    "trackio_space_id",
    "project",
}
_NOT_HYPERPARAMETER_PREFIXES = ("hub_", "logging_", "save_", "push_to_hub_", "log_", "_")


def _hyperparameters(args: Any) -> dict:
    """`args` fields that differ from their defaults, plus total_train_batch_size."""
    import dataclasses

    found = {}
    for field in dataclasses.fields(args):
        name = field.name
        if name in _NOT_HYPERPARAMETERS or name.startswith(_NOT_HYPERPARAMETER_PREFIXES):
            continue
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            continue
        value = _plain(getattr(args, name, default))
        if isinstance(value, dict) and not default:
            # A config object built in __post_init__ (accelerator_config): its own defaults.
            try:
                fresh = _plain(type(getattr(args, name))())
                default = {k: fresh.get(k) for k in value}
            except Exception:
                default = {}
        # Unset (None) and off (False, 0, empty) are the same setting.
        if value is None or (_empty(value) and _empty(default)) or (default is None and not value):
            continue
        if jsonable(value) != jsonable(_plain(default)):
            found[name] = jsonable(value)
    if isinstance(found.get("deepspeed"), str):
        # A path on this machine: its settings, not where they lie.
        try:
            with open(found["deepspeed"], encoding="utf-8") as f:
                found["deepspeed"] = json.load(f)
        except (OSError, ValueError):
            del found["deepspeed"]
    try:
        found["total_train_batch_size"] = (
            args.train_batch_size * args.gradient_accumulation_steps * args.world_size
        )
    except Exception:  # a TrainingArguments subclass without these
        pass
    return found


def _plain(value: Any) -> Any:
    """Config objects (`AcceleratorConfig`) as their dict."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) and not isinstance(value, dict) else value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and not value)


def _evaluation(log_history: Iterable[dict], dataset: dict | None, task: str | None):
    """The latest value of each `eval_*` metric of the log history, with its step."""
    latest = {}
    for entry in log_history or ():
        for key, value in entry.items():
            if not key.startswith("eval_") or isinstance(value, bool):
                continue
            metric = key[len("eval_") :]
            if metric in ("runtime", "samples_per_second", "steps_per_second") or not isinstance(
                value, (int, float)
            ):
                continue
            latest[metric] = {
                "task": task,
                "dataset": dataset,
                "metric": metric,
                "value": value,
                "step": entry.get("step"),
            }
    return list(latest.values())


class _UploadHook:
    """Wraps the Trainer's upload function once per process so that uploads of a registered
    output directory leave out `UPLOAD_IGNORE`."""

    dirs: set = set()
    installed = False

    @classmethod
    def register(cls, output_dir: str) -> None:
        cls.dirs.add(os.path.realpath(output_dir))
        if cls.installed:
            return
        cls.installed = True
        trainer_module = sys.modules.get("transformers.trainer")
        targets = []
        if trainer_module is not None and callable(getattr(trainer_module, "hf_api", None)):
            api = trainer_module.hf_api()  # transformers ≥ 5: one shared HfApi
            targets.append((api, "upload_folder"))
        if trainer_module is not None and callable(getattr(trainer_module, "upload_folder", None)):
            targets.append((trainer_module, "upload_folder"))  # transformers 4
        for owner, name in targets:
            setattr(owner, name, cls.wrap(getattr(owner, name)))
        if not targets:
            logger.warning(
                "cardfill: this transformers has no known upload function: push_to_hub may "
                "upload .cardfill/ and README.md.bak"
            )

    @classmethod
    def wrap(cls, upload):
        def upload_folder(*args, **kwargs):
            folder = kwargs.get("folder_path")
            path_in_repo = kwargs.get("path_in_repo")
            if folder is not None and not path_in_repo and os.path.realpath(folder) in cls.dirs:
                ignore = kwargs.get("ignore_patterns") or []
                if isinstance(ignore, str):
                    ignore = [ignore]
                kwargs["ignore_patterns"] = list(ignore) + [
                    p for p in UPLOAD_IGNORE if p not in ignore
                ]
            return upload(*args, **kwargs)

        upload_folder.__wrapped__ = upload
        return upload_folder


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _is_cardfill_card(text: bytes) -> bool:
    return b"<!-- cardfill" in text or b"# cardfill" in text


class CardfillCallback(TrainerCallback):
    """Records the run and fills the model card; see the module documentation.

    Args:
        output_dir: the checkpoint directory; defaults to `args.output_dir`.
        datasets: Hub ids (or `datasets` objects) trained on, when the Trainer's datasets
            do not say (local files, in-memory data).
        fill: run `cardfill fill` on train end and in `push_to_hub()`.
        fill_args: more arguments for `cardfill fill`, e.g. `["--region", "FR"]`.
        timeout: seconds one call of the binary may take (`$CARDFILL_TIMEOUT`, default 120).
        executable: the cardfill binary (default: the one installed with this package).
        save_state: write `trainer_state.json` into the output directory before filling.
    """

    def __init__(
        self,
        output_dir: str | None = None,
        datasets: Iterable[Any] = (),
        fill: bool = True,
        fill_args: Iterable[str] = (),
        timeout: float | None = None,
        executable: str | None = None,
        save_state: bool = True,
    ):
        self.output_dir = output_dir
        self.datasets = list(datasets)
        self.fill = fill
        self.fill_args = list(fill_args)
        self.timeout = timeout
        self.executable = executable
        self.save_state = save_state
        self.run: Run | None = None
        self.trainer: Any = None
        self.train_datasets: list = []
        self.eval_dataset: Any = None
        self.trained = False

    # ---- plumbing ----

    def _run_for(self, args: Any) -> Run:
        output_dir = self.output_dir or args.output_dir
        if self.run is None or self.run.output_dir != os.fspath(output_dir):
            earlier = self.run
            self.run = Run(
                output_dir,
                timeout=self.timeout,
                executable=self.executable,
                fill_args=self.fill_args,
            )
            if earlier is not None:
                self.run.call = earlier.call  # one warning per callback
        return self.run

    def _guard(self, what: str, action, *args) -> None:
        try:
            action(*args)
        except Exception as err:  # never break the training that called us
            if self.run is None:
                self.run = Run(".", timeout=self.timeout, executable=self.executable)
            self.run.call.problem(f"{what}: {type(err).__name__}: {err}")

    def _attach(self, args: Any) -> None:
        """Finds the Trainer that called us and hooks its card and uploads (once)."""
        if self.trainer is not None:
            return
        frame = sys._getframe(1)
        while frame is not None:
            obj = frame.f_locals.get("self")
            handler = getattr(obj, "callback_handler", None)
            if handler is not None and any(c is self for c in getattr(handler, "callbacks", ())):
                self.trainer = obj
                break
            frame = frame.f_back
        if self.trainer is None:
            return
        run = self._run_for(args)
        _UploadHook.register(run.output_dir)
        trainer = self.trainer
        create_model_card = trainer.create_model_card
        save_model = trainer.save_model

        def card_path(output_dir=None) -> str:
            return os.path.join(output_dir or trainer.args.output_dir, "README.md")

        def create_model_card_then_fill(*a, **kw):
            before = _read(card_path())
            result = create_model_card(*a, **kw)
            if self.fill:
                self._guard("card not filled for push_to_hub", self._refill, card_path(), before)
            return result

        def save_model_then_fill(output_dir=None, _internal_call=False):
            # PEFT's save_pretrained rewrites README.md too (tags, library name).
            before = _read(card_path(output_dir))
            result = save_model(output_dir, _internal_call=_internal_call)
            target = os.path.realpath(output_dir or trainer.args.output_dir)
            if self.fill and self.trained and target == os.path.realpath(run.output_dir):
                self._guard(
                    "card not filled after save_model",
                    self._refill,
                    card_path(output_dir),
                    before,
                    not _internal_call,
                )
            return result

        trainer.create_model_card = create_model_card_then_fill
        trainer.save_model = save_model_then_fill

    def _refill(self, card: str, before: bytes | None, fill: bool = True) -> None:
        """Puts back the card cardfill filled when something rewrote it, then fills it."""
        run = self.run
        if run is None or not run.is_main:
            return
        if os.path.realpath(os.path.dirname(card)) != os.path.realpath(run.output_dir):
            return
        if before is not None and _is_cardfill_card(before) and _read(card) != before:
            tmp = card + ".cardfill-tmp"
            with open(tmp, "wb") as f:
                f.write(before)
            os.replace(tmp, card)
        if fill:
            trainer = self.trainer
            if self.trained and trainer is not None:
                # What was learnt since train end (trainer.evaluate()).
                run.update(self._info(trainer.args, trainer.state, trainer.model))
            run.fill("--no-backup")

    def _info(self, args: Any, state: Any, model: Any) -> dict:
        info = _facts.base_info("transformers")
        info["world_size"] = getattr(args, "world_size", info["world_size"])
        info["rank"] = getattr(args, "process_index", 0)
        _facts.model_facts(model, info)
        datasets = self.datasets or self.train_datasets
        _facts.datasets_facts(datasets, info, "the train dataset's datasets info")
        info["hyperparameters"] = _hyperparameters(args)
        info["read"]["hyperparameters"] = "TrainingArguments fields that differ from their defaults"
        info["read"]["world_size"] = "TrainingArguments.world_size"
        evaluation = _evaluation(
            getattr(state, "log_history", ()),
            _facts.dataset_ref(self.eval_dataset),
            _facts.task_of(model),
        )
        if evaluation:
            info["evaluation"] = evaluation
            info["read"]["evaluation"] = "eval_* metrics of the Trainer's log history"
        return info

    # ---- events ----

    def on_init_end(self, args, state, control, **kwargs):
        self._guard("cannot hook the Trainer", self._attach, args)
        return control

    def on_train_begin(self, args, state, control, **kwargs):
        self._guard("cannot hook the Trainer", self._attach, args)

        def begin():
            for name in ("train_dataloader", "eval_dataloader"):
                loader = kwargs.get(name)
                data = getattr(loader, "dataset", None)
                if name == "train_dataloader" and data is not None:
                    self.train_datasets = [data]
            trainer = self.trainer
            if trainer is not None:
                if getattr(trainer, "train_dataset", None) is not None:
                    self.train_datasets = [trainer.train_dataset]
                eval_dataset = getattr(trainer, "eval_dataset", None)
                if isinstance(eval_dataset, dict):
                    eval_dataset = next(iter(eval_dataset.values()), None)
                self.eval_dataset = eval_dataset
            self._run_for(args).begin()

        self._guard("training record not opened", begin)
        return control

    def on_push_begin(self, args, state, control, **kwargs):
        self._guard("cannot hook the Trainer", self._attach, args)
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):
        def end():
            run = self._run_for(args)
            main = getattr(state, "is_world_process_zero", run.is_main)
            info = None
            if main:
                try:
                    info = self._info(args, state, model)
                except Exception as err:  # the record and the card go on without them
                    run.call.problem(f"could not read the training facts: {err}")
            run.end(info)
            self.trained = True
            if main and self.fill:
                if self.save_state and hasattr(state, "save_to_json"):
                    os.makedirs(run.output_dir, exist_ok=True)
                    state.save_to_json(os.path.join(run.output_dir, "trainer_state.json"))
                run.fill()

        self._guard("card not filled", end)
        return control


__all__ = ["UPLOAD_IGNORE", "CardfillCallback"]
