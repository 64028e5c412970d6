#!/usr/bin/env bash
# The srun command line shared by tools/slurm_train.sh and tools/slurm_test.sh (mmdet3d's conventions): one task per
# GPU with the repository on PYTHONPATH, running the given tool with the given arguments (callers pass --launcher slurm).
#   tools/slurm_run.sh PARTITION JOB_NAME TOOL [TOOL arguments]     (TOOL: train.py or test.py)
# Environment: GPUS (8, total tasks), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun arguments, split on
# spaces), PYTHON (python).
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
TOOL=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
read -r -a SRUN_EXTRA <<< "${SRUN_ARGS:-}"
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)

PYTHONPATH="$(dirname "$TOOLS_DIR")${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_EXTRA[@]+"${SRUN_EXTRA[@]}"} \
    "${PYTHON:-python}" -u "$TOOLS_DIR/$TOOL" "${@:4}"
