"""What the training process knows, read from the live objects (never importing a framework).

Each reader returns plain JSON values for the `training` object of a training record, and
says in `read` what it looked at. Anything it cannot read is left out.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Iterable
from typing import Any

from cardfill._run import jsonable, world_size

# Module name → canonical name in `training.software`.
_FRAMEWORKS = {
    "transformers": "transformers",
    "peft": "peft",
    "accelerate": "accelerate",
    "datasets": "datasets",
    "lightning": "lightning",
    "pytorch_lightning": "lightning",
    "trl": "trl",
    "sentence_transformers": "sentence-transformers",
}

# Model class suffix → Hub task, for evaluation results.
_TASKS = [
    ("ForCausalLM", "text-generation"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForSeq2SeqLM", "text2text-generation"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("ForMaskedLM", "fill-mask"),
    ("ForImageClassification", "image-classification"),
]


def software() -> dict:
    """Versions of python, torch (with its CUDA and cuDNN builds) and the frameworks imported."""
    found = {"python": platform.python_version()}
    torch = sys.modules.get("torch")
    if torch is not None:
        version = getattr(torch, "__version__", None)
        if version:
            found["torch"] = str(version)
        cuda = getattr(getattr(torch, "version", None), "cuda", None)
        if cuda:
            found["cuda"] = str(cuda)
        try:
            cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        except Exception:  # a broken CUDA install must not stop the record
            cudnn = None
        if cudnn:
            major, minor, patch = cudnn // 10000, (cudnn // 100) % 100, cudnn % 100
            found["cudnn"] = f"{major}.{minor}.{patch}" if cudnn >= 10000 else str(cudnn)
    for module, name in _FRAMEWORKS.items():
        mod = sys.modules.get(module)
        version = getattr(mod, "__version__", None) if mod is not None else None
        if version and name not in found:
            found[name] = str(version)
    return found


def _unwrap(model: Any) -> Any:
    """The model inside DDP/FSDP/DeepSpeed/compile wrappers."""
    for _ in range(4):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            break
        model = inner
    return model


def model_facts(model: Any, info: dict) -> None:
    """Base model, class and parameter counts of the live `model` into `info`."""
    if model is None:
        return
    model = _unwrap(model)
    read = info.setdefault("read", {})
    info["model_class"] = type(model).__name__
    base = None
    peft_config = getattr(model, "peft_config", None)
    if isinstance(peft_config, dict) and peft_config:
        config = next(iter(peft_config.values()))
        base = getattr(config, "base_model_name_or_path", None)
        read["base_model"] = "the PEFT config's base_model_name_or_path"
    if not base:
        for label, candidate in (("model", model), ("model.model", getattr(model, "model", None))):
            name = getattr(candidate, "name_or_path", None)
            if isinstance(name, str) and name:
                base = name
                read["base_model"] = f"{label}.name_or_path"
                break
    if base:
        info["base_model"] = str(base)
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        try:
            total = trainable = 0
            for p in parameters():
                n = int(getattr(p, "ds_numel", 0) or p.numel())
                total += n
                if getattr(p, "requires_grad", False):
                    trainable += n
            info["parameters_total"] = total
            info["parameters_trainable"] = trainable
            read["parameters"] = "model.parameters(), counted live"
            if isinstance(peft_config, dict) and peft_config:
                info["parameters_base"] = total - trainable
                read["parameters_base"] = "PEFT model parameters less the trainable adapter's"
        except Exception:  # an exotic parameter type: leave the counts to the files
            pass


def task_of(model: Any) -> str | None:
    """The Hub task the live model's class (or its PEFT base model's) implies, if common."""
    if model is None:
        return None
    model = _unwrap(model)
    classes = [type(model).__name__]
    get_base = getattr(model, "get_base_model", None)
    if callable(get_base):
        try:
            classes.append(type(get_base()).__name__)
        except Exception:  # not a PEFT model after all
            pass
    for name in classes:
        for suffix, task in _TASKS:
            if name.endswith(suffix):
                return task
    return None


_CACHE_SEGMENT = re.compile(r"^(?P<org>[A-Za-z0-9][\w.-]*)___(?P<name>[\w.-]+)$")


def dataset_ref(dataset: Any) -> dict | None:
    """`{id, config, split}` of a dataset from the Hub; None for local or unknown data.

    Accepts a Hub id, a dict with `id`, or a `datasets.Dataset` (its cache files lie under
    `<cache>/<org>___<name>/<config>/…` when it came from the Hub), also inside a torch
    `Subset` or a DataLoader.
    """
    if dataset is None:
        return None
    if isinstance(dataset, str):
        return {"id": dataset, "config": None, "split": None}
    if isinstance(dataset, dict):
        if "id" in dataset:
            return {
                "id": dataset["id"],
                "config": dataset.get("config"),
                "split": dataset.get("split"),
            }
        return None
    for attr in ("dataset",):  # DataLoader, torch Subset
        inner = getattr(dataset, attr, None)
        if inner is not None and inner is not dataset and not hasattr(dataset, "cache_files"):
            return dataset_ref(inner)
    files = getattr(dataset, "cache_files", None)
    if not files:
        return None
    split = getattr(dataset, "split", None)
    info = getattr(dataset, "info", None)
    for entry in files:
        filename = entry.get("filename") if isinstance(entry, dict) else None
        if not filename:
            continue
        parts = os.path.normpath(filename).split(os.sep)
        for i, part in enumerate(parts):
            m = _CACHE_SEGMENT.match(part)
            if m:
                config = getattr(info, "config_name", None) or (
                    parts[i + 1] if i + 1 < len(parts) else None
                )
                return {
                    "id": f"{m['org']}/{m['name']}",
                    "config": config,
                    "split": str(split) if split is not None else None,
                }
    return None


def datasets_facts(datasets: Iterable[Any], info: dict, read: str) -> None:
    """Hub datasets among `datasets` into `info` (duplicates once)."""
    refs = []
    for d in datasets:
        ref = dataset_ref(d)
        if ref is not None and ref not in refs:
            refs.append(ref)
    if refs:
        info["datasets"] = refs
        info.setdefault("read", {})["datasets"] = read


def base_info(integration: str) -> dict:
    """The fields every integration writes."""
    return {
        "integration": integration,
        "world_size": world_size(),
        "software": software(),
        "read": {"software": "__version__ of the imported modules", "world_size": "WORLD_SIZE"},
    }


def hyperparameters_facts(hyperparameters: dict | None, info: dict, read: str) -> None:
    if hyperparameters:
        info["hyperparameters"] = jsonable(dict(hyperparameters))
        info.setdefault("read", {})["hyperparameters"] = read
