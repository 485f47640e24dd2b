"""The installed wheel: both executables, and the hand-over between them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cardfill._find_bin import find_cardfill_bin


def test_the_wheel_installs_the_network_half_beside_cardfill(tmp_path):
    cardfill = Path(find_cardfill_bin())
    helper = cardfill.with_name("cardfill-online" + cardfill.suffix)
    assert helper.is_file() and os.access(helper, os.X_OK), f"{helper} missing"

    # `--online` is handed to cardfill-online, which honours HF_HUB_OFFLINE and says so.
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "_name_or_path": "org/base-model",
            }
        )
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("CARDFILL_ONLINE", None)
    done = subprocess.run(
        [str(cardfill), "inspect", str(tmp_path), "--online", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "HF_HUB_OFFLINE is set" in done.stdout, done.stdout
