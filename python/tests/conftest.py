"""Fixtures for the tests of the `cardfill` package, run against the installed wheel.

Each training runs in its own Python process, as a user's script does, with its own
`HF_HOME` and no network but a fake Hub on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "scripts"

#: The card a person wrote before training: every line of it must survive.
HUMAN_CARD = """---
license: apache-2.0
tags:
- tiny
---

# tiny-llama-stories

A tiny Llama fine-tuned on tiny stories, written by a person before training.

## Uses

Only for testing cardfill; the stories are random tokens.

## Model Details

### Model Description

- **Developed by:** the cardfill tests
- **Finetuned from model:** [More Information Needed]
"""


@pytest.fixture()
def hf_home(tmp_path_factory):
    return tmp_path_factory.mktemp("hf_home")


@pytest.fixture()
def out(tmp_path):
    """An output folder holding a hand-written card (`HUMAN_CARD`) for a run to fill."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text(HUMAN_CARD)
    return out


@pytest.fixture()
def env(hf_home):
    """The environment of a training script: offline, its own caches, one CPU process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "CARDFILL", "SLURM_", "TORCHELASTIC_"))
        and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "CUDA_VISIBLE_DEVICES")
    }
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        CUDA_VISIBLE_DEVICES="",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(SCRIPTS),
    )
    return env


def run_script(
    name: str, env: dict, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Runs `scripts/NAME` with this interpreter; fails the test with its output on error."""
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"{name} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def inspect(directory, env: dict) -> dict:
    """`cardfill inspect DIR --format json`, with the binary this package installed."""
    import cardfill

    out = subprocess.run(
        [cardfill.find_cardfill_bin(), "inspect", str(directory), "--format", "json"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def fact(facts: dict, path: str):
    """The value at a dotted path of `inspect --format json`."""
    value = facts
    for part in path.split("."):
        value = value[part]
    return value


def warnings_of(stderr: str) -> list:
    """The lines cardfill's package logged as warnings."""
    return [line for line in stderr.splitlines() if line.startswith("WARNING cardfill")]


def assert_human_lines_kept(card: str) -> None:
    for line in HUMAN_CARD.splitlines():
        if line.strip() and "[More Information Needed]" not in line:
            assert line in card.splitlines(), f"human line lost: {line!r}\n---\n{card}"
