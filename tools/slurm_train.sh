#!/usr/bin/env bash
# Training on a Slurm cluster (mmdet3d's conventions): one srun task per GPU, mmengine's slurm launcher.
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#       tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options]
# e.g. GPUS=16 DATA_ROOT=/data/nuscenes/ tools/slurm_train.sh gpu uniad configs/uniad_nexusflow/uniad_sgeo.py \
#          work_dirs/uniad_sgeo --resume
# Environment: GPUS (8, total tasks), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun arguments,
# split on spaces), PYTHON (python); srun passes the rest (e.g. DATA_ROOT) on to the tasks. The srun line:
# tools/slurm_run.sh.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" train.py "$3" --work-dir "$4" --launcher slurm "${@:5}"
