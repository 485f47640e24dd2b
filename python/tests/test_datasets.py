"""Which datasets become Hub ids: those `datasets` read from the Hub's cache, never local files."""

from __future__ import annotations

import os

from cardfill._facts import dataset_ref


def test_local_and_in_memory_datasets_are_not_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import Dataset, load_dataset

    in_memory = Dataset.from_dict({"text": ["a", "b"]})
    assert dataset_ref(in_memory) is None
    data = tmp_path / "my-org___my-data.jsonl"  # a local file that looks like a cache folder
    data.write_text('{"text": "a"}\n{"text": "b"}\n')
    local = load_dataset("json", data_files=str(data), split="train")
    assert local.cache_files, "read through the datasets cache"
    assert dataset_ref(local) is None


def test_hub_datasets_and_given_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "scripts"))
    from common import hub_dataset

    assert dataset_ref(hub_dataset("validation", 2)) == {
        "id": "tiny-org/tiny-stories",
        "config": "default",
        "split": "validation",
    }
    assert dataset_ref("org/data") == {"id": "org/data", "config": None, "split": None}
    assert dataset_ref({"id": "org/data", "split": "test"})["split"] == "test"
