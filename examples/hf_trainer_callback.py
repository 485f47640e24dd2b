"""Fine-tune with the Hugging Face Trainer and let cardfill fill the model card.

    pip install .     # in a clone of cardfill: the `cardfill` binary and Python package
    python examples/hf_trainer_callback.py MODEL_ID DATASET_ID OUTPUT_DIR [--push REPO_ID]

The only cardfill line is the callback:

    from cardfill.integrations.transformers import CardfillCallback
    trainer = Trainer(model=model, args=args, ..., callbacks=[CardfillCallback()])

On train begin it opens a training record in `OUTPUT_DIR/.cardfill/` (each node's hardware,
start and GPU energy counters); on train end, on the main process, it adds what the process
knows (base model, datasets, hyperparameters, evaluation metrics, framework versions), saves
`trainer_state.json` and runs `cardfill fill OUTPUT_DIR`. `trainer.push_to_hub()` uploads the
filled card, without `.cardfill/` and `README.md.bak`. It never raises into training: a missing
cardfill, a failure or a timeout is one warning line and training carries on.
"""

import argparse
import sys

from cardfill.integrations.transformers import CardfillCallback

__all__ = ["CardfillCallback", "main"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_id")
    parser.add_argument("dataset_id")
    parser.add_argument("output_dir")
    parser.add_argument("--push", metavar="REPO_ID")
    parser.add_argument("--region", help="grid region for the carbon estimate, e.g. FR")
    opts = parser.parse_args(argv)

    from datasets import load_dataset
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(opts.model_id)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(opts.model_id)
    data = load_dataset(opts.dataset_id)
    text = next(c for c in data["train"].column_names if c in ("text", "content", "story"))
    data = data.map(
        lambda rows: tokenizer(rows[text], truncation=True, max_length=512),
        batched=True,
        remove_columns=data["train"].column_names,
    )
    args = TrainingArguments(
        output_dir=opts.output_dir,
        num_train_epochs=1,
        learning_rate=5e-5,
        eval_strategy="epoch" if "validation" in data else "no",
        report_to="none",
        hub_model_id=opts.push,
    )
    fill_args = ["--region", opts.region] if opts.region else []
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data.get("validation"),
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        callbacks=[CardfillCallback(fill_args=fill_args)],
    )
    trainer.train()
    trainer.save_model()  # the card is filled again with the saved weights
    if opts.push:
        trainer.push_to_hub()
    return 0


if __name__ == "__main__":
    sys.exit(main())
