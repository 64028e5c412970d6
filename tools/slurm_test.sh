#!/usr/bin/env bash
# Testing on a Slurm cluster (mmdet3d's conventions): one srun task per GPU, mmengine's slurm launcher.
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#       tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]
# e.g. GPUS=8 tools/slurm_test.sh gpu uniad-test configs/uniad_nexusflow/uniad_sgeo.py ckpt.pth --work-dir work_dirs/t
# Environment: GPUS (8, total tasks), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun arguments,
# split on spaces), PYTHON (python); srun passes the rest (e.g. DATA_ROOT) on to the tasks. The srun line:
# tools/slurm_run.sh.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py options]" >&2
    exit 2
fi
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" test.py "$3" "$4" --launcher slurm "${@:5}"
