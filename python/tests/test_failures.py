"""Never break the training: a missing binary, a binary that fails or hangs, an unwritable
output directory each cost one warning line, and training ends as it would have."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import SCRIPTS, run_script, warnings_of


def fake_cardfill(tmp_path, body: str) -> str:
    path = tmp_path / "fake-cardfill"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def trainer_run(out, env):
    result = run_script("train_trainer.py", env, str(out), "--no-save")
    assert "trained 4 steps" in result.stdout
    return warnings_of(result.stderr)


def test_missing_binary_is_one_warning(tmp_path, env):
    env = dict(env, CARDFILL=str(tmp_path / "no-such-cardfill"))
    (warning,) = trainer_run(tmp_path / "out", env)
    assert "no-such-cardfill" in warning and "training goes on" in warning
    assert not (tmp_path / "out" / "README.md").exists()


def test_binary_exiting_2_is_one_warning(tmp_path, env):
    env = dict(env, CARDFILL=fake_cardfill(tmp_path, 'echo "error: injected" >&2; exit 2'))
    (warning,) = trainer_run(tmp_path / "out", env)
    assert "exited with 2: error: injected" in warning


def test_binary_past_the_timeout_is_stopped_with_one_warning(tmp_path, env):
    env = dict(env, CARDFILL=fake_cardfill(tmp_path, "exec sleep 30"), CARDFILL_TIMEOUT="1")
    result = run_script("train_loop.py", env, str(tmp_path / "out"))
    assert "trained 4 steps" in result.stdout
    (warning,) = warnings_of(result.stderr)
    assert "took more than 1 s" in warning


def test_unwritable_output_directory_is_one_warning(tmp_path, env):
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, str(SCRIPTS / "train_trainer.py"), str(out), "--no-save"]
    if os.geteuid() != 0:
        out.chmod(0o555)
    elif shutil.which("unshare"):
        # root writes through permission bits: mount the folder read-only in a private
        # mount namespace that ends with the process.
        command = [
            "unshare",
            "-m",
            "sh",
            "-c",
            'mount --bind -o ro "$0" "$0" && exec "$@"',
            str(out),
            *command,
        ]
    else:
        pytest.skip("root without unshare cannot make a read-only folder")
    result = subprocess.run(
        command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
    )
    out.chmod(0o755)
    if result.returncode != 0 and "mount" in result.stderr and "trained" not in result.stdout:
        pytest.skip(f"cannot mount read-only here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "trained 4 steps" in result.stdout
    (warning,) = warnings_of(result.stderr)
    assert "cannot write run record" in warning, warning
    assert list(out.iterdir()) == []


def test_python_m_cardfill_runs_the_installed_binary(tmp_path):
    import cardfill

    binary = cardfill.find_cardfill_bin()
    assert os.path.dirname(binary) == os.path.dirname(sys.executable)
    out = subprocess.run(
        [sys.executable, "-m", "cardfill", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("cardfill ")
    # Exit codes pass through.
    out = subprocess.run(
        [sys.executable, "-m", "cardfill", "inspect", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "missing" in out.stderr


def test_importing_cardfill_imports_no_framework():
    code = (
        "import sys, cardfill; bad = [m for m in ('torch', 'transformers', 'lightning', "
        "'datasets', 'numpy') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_fill_passes_flags_and_reports_success(tmp_path):
    import cardfill

    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "config.json").write_text(
        '{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}'
    )
    assert cardfill.fill(out, hours=2.5, no_backup=True) is True
    card = (out / "README.md").read_text()
    assert "**Hours used:** 2.5 hours" in card
    assert not (out / "README.md.bak").exists()
    assert cardfill.fill(tmp_path / "missing") is False
