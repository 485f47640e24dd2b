//! The documented dotted paths of the facts: the JSON contract of `inspect --format json`.
//!
//! Collectors and the card use these constants, never string literals, so the contract lives
//! in one place. Values are JSON; the comment on each says its shape.

// ---- model ----
/// string: `architectures[0]` of `config.json`, e.g. `LlamaForCausalLM`.
pub const MODEL_ARCHITECTURE: &str = "model.architecture";
/// string: `model_type` of `config.json`.
pub const MODEL_MODEL_TYPE: &str = "model.model_type";
/// string (Hub id `org/name`), or a list of ids for merged models. Never a local path.
pub const MODEL_BASE_MODEL: &str = "model.base_model";
/// string: `adapter`, `quantized`, `merge` or `finetune`.
pub const MODEL_BASE_MODEL_RELATION: &str = "model.base_model_relation";
/// string: the model's own name where a file states it (GGUF `general.name`, diffusers class).
pub const MODEL_NAME: &str = "model.name";
/// string: torch dtype of the config (`bfloat16`).
pub const MODEL_DTYPE: &str = "model.dtype";
/// integer: hidden size.
pub const MODEL_HIDDEN_SIZE: &str = "model.hidden_size";
/// integer: number of layers.
pub const MODEL_NUM_LAYERS: &str = "model.num_layers";
/// integer: attention heads.
pub const MODEL_NUM_ATTENTION_HEADS: &str = "model.num_attention_heads";
/// integer: key/value heads (grouped-query attention).
pub const MODEL_NUM_KV_HEADS: &str = "model.num_key_value_heads";
/// integer: head dimension where stated.
pub const MODEL_HEAD_DIM: &str = "model.head_dim";
/// integer: MLP intermediate size.
pub const MODEL_INTERMEDIATE_SIZE: &str = "model.intermediate_size";
/// integer: vocabulary size.
pub const MODEL_VOCAB_SIZE: &str = "model.vocab_size";
/// integer: context length (`max_position_embeddings` or equivalent).
pub const MODEL_CONTEXT_LENGTH: &str = "model.context_length";
/// bool: tied input and output embeddings.
pub const MODEL_TIED_EMBEDDINGS: &str = "model.tie_word_embeddings";
/// integer: experts per MoE layer.
pub const MODEL_NUM_EXPERTS: &str = "model.num_experts";
/// integer: experts active per token.
pub const MODEL_EXPERTS_PER_TOKEN: &str = "model.experts_per_token";
/// string: Hub pipeline tag inferred from architecture and files.
pub const MODEL_PIPELINE_TAG: &str = "model.pipeline_tag";
/// string: Hub library name (`transformers`, `peft`, `diffusers`, ...).
pub const MODEL_LIBRARY_NAME: &str = "model.library_name";
/// string: licence id (inherited from the base model where the card lacks one).
pub const MODEL_LICENSE: &str = "model.license";
/// string: `license_name` for `license: other`.
pub const MODEL_LICENSE_NAME: &str = "model.license_name";
/// string: `license_link` for `license: other`.
pub const MODEL_LICENSE_LINK: &str = "model.license_link";
/// string or list of strings: language codes.
pub const MODEL_LANGUAGE: &str = "model.language";
/// string: the class of the live model in the training process (`LlamaForCausalLM`,
/// `PeftModelForCausalLM`).
pub const MODEL_CLASS: &str = "model.class";
/// object: the PEFT adapter (`type`, `r`, `alpha`, `target_modules`, `task_type`).
pub const MODEL_ADAPTER: &str = "model.adapter";

// ---- parameters ----
/// integer: logical parameter count (the model's real count, quantization unpacked).
pub const PARAMETERS_TOTAL: &str = "parameters.total";
/// object: safetensors dtype name (or ggml type) → count.
pub const PARAMETERS_BY_DTYPE: &str = "parameters.by_dtype";
/// integer: trainable parameters (a PEFT adapter's count).
pub const PARAMETERS_TRAINABLE: &str = "parameters.trainable";
/// integer: the base model's own parameter count, for an adapter (its weights in the Hugging
/// Face cache, or the training record).
pub const PARAMETERS_BASE: &str = "parameters.base";
/// integer: parameters active per token (mixture of experts).
pub const PARAMETERS_ACTIVE: &str = "parameters.active";
/// integer: stored element count where it differs from the logical count.
pub const PARAMETERS_STORED: &str = "parameters.stored";
/// object: component name → count (diffusers pipelines).
pub const PARAMETERS_COMPONENTS: &str = "parameters.components";

// ---- checkpoint ----
/// string: `safetensors`, `safetensors-sharded`, `pytorch`, `pytorch-sharded`, `gguf`, ...
pub const CHECKPOINT_FORMAT: &str = "checkpoint.format";
/// list of strings: weight files, relative to the directory.
pub const CHECKPOINT_FILES: &str = "checkpoint.files";
/// integer: total bytes of the weight files.
pub const CHECKPOINT_BYTES: &str = "checkpoint.bytes";
/// object: quantization method and bits.
pub const CHECKPOINT_QUANTIZATION: &str = "checkpoint.quantization";
/// list of objects: other copies of the same weights (format, files, bytes).
pub const CHECKPOINT_ALTERNATIVES: &str = "checkpoint.alternatives";
/// string: the sub-directory inspected when it is not the root (`checkpoint-900`).
pub const CHECKPOINT_INSPECTED_DIR: &str = "checkpoint.inspected_dir";
/// bool: weights are git-lfs pointers, not present.
pub const CHECKPOINT_WEIGHTS_MISSING: &str = "checkpoint.weights_missing";
/// list of objects: pickles that reach for code execution, with why.
pub const CHECKPOINT_UNSAFE: &str = "checkpoint.unsafe";
/// object: GGUF header metadata (`architecture`, `name`, `file_type`, `context_length`,
/// `bytes_per_parameter`, ...); a list of such objects when several GGUF models are present.
pub const CHECKPOINT_GGUF: &str = "checkpoint.gguf";
/// object: a distributed checkpoint (`kind`: `torch.distributed.checkpoint` or `deepspeed`,
/// `ranks`: rank files found, a hint of the data-parallel world size, `tag`).
pub const CHECKPOINT_DISTRIBUTED: &str = "checkpoint.distributed";
/// object: a sentence-transformers model (`modules`: list of `{name, path, type}`).
pub const CHECKPOINT_SENTENCE_TRANSFORMERS: &str = "checkpoint.sentence_transformers";

// ---- run ----
/// string: RFC 3339 start of the run.
pub const RUN_START: &str = "run.start";
/// string: RFC 3339 end of the run.
pub const RUN_END: &str = "run.end";
/// number: wall-clock hours.
pub const RUN_HOURS: &str = "run.hours";
/// number: GPU-hours (Σ GPUs × hours per node).
pub const RUN_GPU_HOURS: &str = "run.gpu_hours";
/// integer: nodes.
pub const RUN_NODES: &str = "run.nodes";
/// number: measured or sampled energy in kWh.
pub const RUN_ENERGY_KWH: &str = "run.energy_kwh";
/// string: how energy was obtained: `measured` (NVML counters) or `sampled` (power polling).
pub const RUN_ENERGY_METHOD: &str = "run.energy_method";
/// number: CPU package energy from RAPL counters of the run records, kWh.
pub const RUN_CPU_ENERGY_KWH: &str = "run.cpu_energy_kwh";
/// number: DRAM energy from RAPL counters of the run records, kWh.
pub const RUN_RAM_ENERGY_KWH: &str = "run.ram_energy_kwh";
/// list of objects `{"gpu": "GPU 0", "samples": [[seconds, watts], ...]}`: each GPU's power
/// draw over the run, from the run records' samples (seconds since the run's start; at most 240
/// samples per GPU), in node and index order; absent without samples.
pub const RUN_POWER: &str = "run.power";

// ---- hardware ----
/// integer: GPUs used by the run.
pub const HARDWARE_GPU_COUNT: &str = "hardware.gpu_count";
/// list of objects: `{name, memory_bytes, power_limit_w, uuid}`.
pub const HARDWARE_GPUS: &str = "hardware.gpus";
/// string: CPU model.
pub const HARDWARE_CPU: &str = "hardware.cpu";
/// integer: CPU cores.
pub const HARDWARE_CPU_CORES: &str = "hardware.cpu_cores";
/// integer: RAM in bytes.
pub const HARDWARE_RAM_BYTES: &str = "hardware.ram_bytes";
/// string: operating system.
pub const HARDWARE_OS: &str = "hardware.os";
/// string: host name (kept out of the card unless asked for).
pub const HARDWARE_HOSTNAME: &str = "hardware.hostname";
/// string: NVIDIA driver version.
pub const HARDWARE_DRIVER_VERSION: &str = "hardware.driver_version";
/// string: CUDA driver version.
pub const HARDWARE_CUDA_VERSION: &str = "hardware.cuda_version";

// ---- training ----
/// string: one of the template's phrasings (`bf16 mixed precision`, ...).
pub const TRAINING_REGIME: &str = "training.regime";
/// integer: processes of the training run (world size), from the training process.
pub const TRAINING_WORLD_SIZE: &str = "training.world_size";
/// number: trainer runtime in seconds.
pub const TRAINING_RUNTIME_S: &str = "training.runtime_s";
/// integer: optimizer steps.
pub const TRAINING_STEPS: &str = "training.steps";
/// number: epochs (absent for streaming runs).
pub const TRAINING_EPOCHS: &str = "training.epochs";
/// number: total floating point operations.
pub const TRAINING_FLOS: &str = "training.flos";
/// number: samples per second.
pub const TRAINING_SAMPLES_PER_SECOND: &str = "training.samples_per_second";
/// number: steps per second.
pub const TRAINING_STEPS_PER_SECOND: &str = "training.steps_per_second";
/// string: best checkpoint.
pub const TRAINING_BEST_CHECKPOINT: &str = "training.best_checkpoint";
/// object: framework name → version found in the files (`transformers` → `4.32.1`).
pub const TRAINING_SOFTWARE: &str = "training.software";
/// string: distributed setup from the launch configs (`DDP`, `FSDP`, `DeepSpeed ZeRO-3 with
/// CPU offload`, `Megatron-LM`).
pub const TRAINING_DISTRIBUTED: &str = "training.distributed";
/// integer: processes launched over all machines (accelerate `num_processes`).
pub const TRAINING_PROCESSES: &str = "training.processes";
/// integer: machines the launch config names (accelerate `num_machines`).
pub const TRAINING_MACHINES: &str = "training.machines";
/// object: `TrainingArguments` field name → value (non-default values, and the ones the
/// Trainer's card always shows: learning rate, batch sizes, accumulation, seed, optimizer,
/// scheduler), plus `total_train_batch_size` (per-device × gradient accumulation × world size).
pub const TRAINING_HYPERPARAMETERS: &str = "training.hyperparameters";
/// list of objects `{"id": "org/name", "config": str|null, "split": str|null}`: training
/// datasets, Hub ids only (never local paths).
pub const TRAINING_DATASETS: &str = "training.datasets";

/// list of objects: the trainer's log (`trainer_state.json` `log_history`), numbers only:
/// `step`, `epoch`, `loss`, `learning_rate`, `grad_norm`, `eval_*`; at most 1000 entries
/// (evenly thinned, evaluation entries always kept).
pub const TRAINING_LOG: &str = "training.log";

// ---- evaluation ----
/// list of objects `{"task": str|null, "dataset": {"id", "config", "split"}|null,
/// "metric": str, "value": number, "step": int|null}`; `task` is the Hub task type
/// (`text-generation`); an optional `name` is the benchmark's own task name (`arc_easy`).
pub const EVALUATION_RESULTS: &str = "evaluation.results";

// ---- carbon ----
/// number: IT energy of the devices, kWh (before PUE).
pub const CARBON_ENERGY_KWH: &str = "carbon.energy_kwh";
/// number: GPU share of `carbon.energy_kwh`, kWh.
pub const CARBON_ENERGY_GPU_KWH: &str = "carbon.energy_gpu_kwh";
/// number: CPU share of `carbon.energy_kwh` (RAPL, or TDP × hours), kWh.
pub const CARBON_ENERGY_CPU_KWH: &str = "carbon.energy_cpu_kwh";
/// number: RAM share of `carbon.energy_kwh` (RAPL DRAM, or W/GB × GB × hours), kWh.
pub const CARBON_ENERGY_RAM_KWH: &str = "carbon.energy_ram_kwh";
/// number: facility energy, kWh (IT energy × PUE, or given with `--energy-scope facility`).
pub const CARBON_FACILITY_ENERGY_KWH: &str = "carbon.facility_energy_kwh";
/// string: `it` or `facility`: what the energy figure given covered.
pub const CARBON_ENERGY_SCOPE: &str = "carbon.energy_scope";
/// number: power usage effectiveness applied.
pub const CARBON_PUE: &str = "carbon.pue";
/// number: grid intensity, g CO2eq per kWh.
pub const CARBON_INTENSITY: &str = "carbon.intensity_g_per_kwh";
/// number: emissions in grams CO2eq.
pub const CARBON_CO2_GRAMS: &str = "carbon.co2_grams";
/// string: region key (`aws:us-east-1`, `FR`, `US-CA`).
pub const CARBON_REGION: &str = "carbon.region";
/// string: cloud provider, where the region is a cloud region.
pub const CARBON_PROVIDER: &str = "carbon.provider";
/// string: `measured`, `sampled` or `estimated`, with detail.
pub const CARBON_METHOD: &str = "carbon.method";
/// string: source and year of the intensity figure.
pub const CARBON_INTENSITY_SOURCE: &str = "carbon.intensity_source";
/// string: human location of the grid (`Virginia, United States`).
pub const CARBON_LOCATION: &str = "carbon.location";
/// string: `pre-training` or `fine-tuning`.
pub const CARBON_TRAINING_TYPE: &str = "carbon.training_type";
/// integer: year of the intensity figure.
pub const CARBON_INTENSITY_YEAR: &str = "carbon.intensity_year";
/// string: gas basis and scope of the intensity figure (`CO2e lifecycle, generation`).
pub const CARBON_INTENSITY_METHOD: &str = "carbon.intensity_method";
/// number: market-based intensity (supplier factor or procured renewables), g CO2eq per kWh.
pub const CARBON_MARKET_INTENSITY: &str = "carbon.market_intensity_g_per_kwh";
/// number: market-based emissions, grams CO2eq (never the headline figure).
pub const CARBON_CO2_MARKET_GRAMS: &str = "carbon.co2_market_grams";
/// number: embodied emissions of the accelerators, amortised over their life, grams CO2eq.
pub const CARBON_EMBODIED_GRAMS: &str = "carbon.embodied_grams";
/// string: how the embodied emissions were worked out.
pub const CARBON_EMBODIED_METHOD: &str = "carbon.embodied_method";

// ---- hub (a model filled from the Hub, `fill --from-hub`) ----
/// string: the repository the facts were read from (`org/name`).
pub const HUB_REPO: &str = "hub.repo";
/// string: the commit (sha) every remote file was read at.
pub const HUB_REVISION: &str = "hub.revision";
/// integer: bytes received from the Hub (answers' bodies) to work out the facts.
pub const HUB_BYTES_FETCHED: &str = "hub.bytes_fetched";
/// integer: HTTP requests made to the Hub.
pub const HUB_REQUESTS: &str = "hub.requests";
/// list of objects: weight files on the Hub not downloaded (`{path, bytes}`), e.g. pickled
/// `.bin` weights, whose parameters are therefore not counted.
pub const HUB_NOT_FETCHED: &str = "hub.not_fetched";
