"""TRL's `SFTTrainer` (a `Trainer` subclass) on CPU with `CardfillCallback`.

python train_trl.py OUTPUT_DIR
"""

from __future__ import annotations

import logging
import sys

from cardfill.integrations.transformers import CardfillCallback
from common import VOCAB, hub_dataset, tiny_base_model


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import transformers
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from trl import SFTConfig, SFTTrainer

    transformers.logging.set_verbosity_error()
    vocab = {f"t{i}": i for i in range(VOCAB)}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="t0")),
        pad_token="t0",
        eos_token="t1",
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model())
    args = SFTConfig(
        output_dir=sys.argv[1],
        per_device_train_batch_size=4,
        max_steps=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=hub_dataset("train", 16).remove_columns("labels"),
        processing_class=tokenizer,
        callbacks=[CardfillCallback()],
    )
    trainer.train()
    trainer.save_model()
    print(f"trained {trainer.state.global_step} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
