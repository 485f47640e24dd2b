"""Which process writes what: each node's local rank 0 records its node, only the main
process (RANK 0) adds the training facts and fills the card (torchrun, Accelerate)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import warnings_of

TRACK = """
import logging, sys
import cardfill
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
with cardfill.track(sys.argv[1], hyperparameters={"learning_rate": 0.1}) as run:
    run.log_eval("accuracy", 0.5, step=3)
print("done")
"""


def track(out, env, **ranks):
    env = dict(env, **{k.upper(): str(v) for k, v in ranks.items()})
    result = subprocess.run(
        [sys.executable, "-c", TRACK, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "done\n", result.stderr
    assert warnings_of(result.stderr) == [], result.stderr


def records(out):
    folder = out / ".cardfill"
    if not folder.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_only_local_rank_zero_records_and_only_rank_zero_fills(tmp_path, env):
    out = tmp_path / "out"
    env = dict(env, WORLD_SIZE="4", CARDFILL_RUN_KEY="torchelastic-test")
    # Second process of the second node: nothing.
    track(out, env, rank=3, local_rank=1)
    assert records(out) == [] and not (out / "README.md").exists()
    # First process of the second node: its node's record, no training facts, no card.
    track(out, dict(env, SLURMD_NODENAME="node2"), rank=2, local_rank=0)
    (node2,) = records(out)
    assert node2["node"] == "node2" and node2["kind"] == "training"
    assert "training" not in node2 and "open_counters_mj" not in node2
    assert not (out / "README.md").exists()
    # The main process: its node's record with the training facts, and the card.
    track(out, dict(env, SLURMD_NODENAME="node1"), rank=0, local_rank=0)
    main = [r for r in records(out) if r["node"] == "node1"]
    assert len(main) == 1 and main[0]["training"]["world_size"] == 4
    assert main[0]["training"]["hyperparameters"] == {"learning_rate": 0.1}
    assert main[0]["training"]["evaluation"][0]["metric"] == "accuracy"
    assert (out / "README.md").exists()
