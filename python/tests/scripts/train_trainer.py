"""A real `transformers.Trainer` run on CPU with `CardfillCallback`.

python train_trainer.py OUTPUT_DIR [--peft] [--push REPO] [--no-save]
"""

from __future__ import annotations

import argparse
import logging
import sys

from cardfill.integrations.transformers import CardfillCallback
from common import hub_dataset, tiny_base_model


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir")
    parser.add_argument("--peft", action="store_true")
    parser.add_argument("--push")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--eval-after", action="store_true", help="evaluate after training only")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    import transformers
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    transformers.logging.set_verbosity_error()
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model())
    if opts.peft:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
            ),
        )
    args = TrainingArguments(
        output_dir=opts.output_dir,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        gradient_accumulation_steps=2,
        max_steps=4,
        learning_rate=1e-3,
        warmup_steps=1,
        weight_decay=0.01,
        lr_scheduler_type="cosine",
        seed=7,
        eval_strategy="no" if opts.eval_after else "steps",
        eval_steps=2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        hub_model_id=opts.push,
        hub_token="hf_fake" if opts.push else None,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=hub_dataset("train", 16),
        eval_dataset=hub_dataset("validation", 8),
        callbacks=[CardfillCallback()],
    )
    result = trainer.train()
    if opts.eval_after:
        trainer.evaluate()
    if not opts.no_save:
        trainer.save_model()
    if opts.push:
        trainer.push_to_hub()
    print(f"trained {result.global_step} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
