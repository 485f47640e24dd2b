"""Fill the model card when a Hugging Face Trainer run ends.

    from hf_trainer_callback import CardfillCallback

    trainer = Trainer(model=model, args=args, ..., callbacks=[CardfillCallback()])
    trainer.train()

At the end of training, on the main process only, the callback writes the trainer state
(`trainer_state.json`, with the run's `train_runtime`) into the output directory and runs
`cardfill fill OUTPUT_DIR`. It never raises into training: a missing cardfill, a failure or a
timeout is logged as a warning and training carries on as if nothing happened.

Run the training under `cardfill run --record OUTPUT_DIR -- python train.py` (or `cardfill
probe` under Slurm) and the card also gets the hardware, hours and energy of the run.
"""

import logging
import os
import shutil
import subprocess

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class CardfillCallback(TrainerCallback):
    """Runs `cardfill fill` on the output directory when training ends.

    Args:
        output_dir: the checkpoint directory to fill; defaults to `args.output_dir`.
        extra_args: more arguments for `cardfill fill`, e.g. `["--region", "FR"]`.
        executable: the cardfill binary; defaults to `$CARDFILL`, then `cardfill` on PATH.
        timeout: seconds cardfill may take before it is stopped.
        save_state: write `trainer_state.json` into the output directory first.
    """

    def __init__(self, output_dir=None, extra_args=(), executable=None, timeout=300,
                 save_state=True):
        self.output_dir = output_dir
        self.extra_args = list(extra_args)
        self.executable = executable or os.environ.get("CARDFILL", "cardfill")
        self.timeout = timeout
        self.save_state = save_state

    def on_train_end(self, args, state, control, **kwargs):
        try:
            if getattr(state, "is_world_process_zero", True):
                self._fill(self.output_dir or args.output_dir, state)
        except Exception as exc:  # never break the training that called us
            logger.warning("cardfill: card not filled: %s", exc)
        return control

    def _fill(self, output_dir, state):
        binary = shutil.which(self.executable)
        if binary is None:
            logger.warning("cardfill: `%s` not found on PATH; card not filled", self.executable)
            return
        os.makedirs(output_dir, exist_ok=True)
        if self.save_state and hasattr(state, "save_to_json"):
            state.save_to_json(os.path.join(output_dir, "trainer_state.json"))
        command = [binary, "fill", output_dir, *self.extra_args]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        if result.returncode != 0:
            logger.warning(
                "cardfill: `%s` exited with %d: %s",
                " ".join(command),
                result.returncode,
                result.stderr.strip(),
            )
        else:
            logger.info("cardfill: filled the model card in %s", output_dir)
