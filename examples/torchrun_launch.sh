#!/bin/bash
# Launch training on this machine with torchrun (or accelerate) under `cardfill run`, then fill
# the model card. On several machines run it on each with NNODES and NODE_RANK set, and the
# same OUTPUT_DIR on a shared file system: each machine writes its own record.
#
#   OUTPUT_DIR=runs/my-model examples/torchrun_launch.sh train.py --lr 3e-5
#   LAUNCHER=accelerate OUTPUT_DIR=runs/my-model examples/torchrun_launch.sh train.py
#
# `cardfill run` passes stdin, stdout, stderr, signals and the exit code through; the
# script's exit status is the training's.
set -uo pipefail

OUTPUT_DIR=${OUTPUT_DIR:-output}
CARDFILL=${CARDFILL:-cardfill}
LAUNCHER=${LAUNCHER:-torchrun}
NPROC=${NPROC:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}
[[ ${NPROC:-0} -gt 0 ]] || NPROC=1
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}

if [[ $# -eq 0 ]]; then
    echo "usage: $0 TRAIN_SCRIPT [ARGS...]" >&2
    exit 2
fi
mkdir -p "$OUTPUT_DIR"

case $LAUNCHER in
torchrun)
    launch=(torchrun --nnodes="$NNODES" --node-rank="$NODE_RANK" --nproc-per-node="$NPROC"
        --master-addr="$MASTER_ADDR" --master-port="$MASTER_PORT")
    ;;
accelerate)
    launch=(accelerate launch --num_machines="$NNODES" --machine_rank="$NODE_RANK"
        --num_processes=$((NPROC * NNODES)) --main_process_ip="$MASTER_ADDR"
        --main_process_port="$MASTER_PORT")
    ;;
*)
    echo "LAUNCHER must be torchrun or accelerate, not $LAUNCHER" >&2
    exit 2
    ;;
esac

if command -v "$CARDFILL" >/dev/null 2>&1; then
    "$CARDFILL" run --record "$OUTPUT_DIR" -- "${launch[@]}" "$@" --output_dir "$OUTPUT_DIR"
else
    echo "cardfill not found: training without a run record" >&2
    "${launch[@]}" "$@" --output_dir "$OUTPUT_DIR"
fi
status=$?

# The card once, from the first machine, after training.
if [[ $NODE_RANK == 0 ]] && command -v "$CARDFILL" >/dev/null 2>&1; then
    "$CARDFILL" fill "$OUTPUT_DIR" ||
        echo "cardfill fill failed (exit $?); the model is saved, run it again by hand" >&2
fi
exit "$status"
