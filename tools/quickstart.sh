#!/usr/bin/env bash
# The main job on the embedded default: synthetic nuScenes -> train -> sequential test with all metrics.
#   bash tools/quickstart.sh                       # tiny NexusFlow (one-phase, S-Geo) on the synthetic set
#   CONFIG=configs/uniad_nexusflow/tiny_uniad_sgeo.py bash tools/quickstart.sh   # the PS-MTL baseline instead
# Environment: CONFIG, DATA_ROOT (data/nuscenes-synth), WORK_DIR (work_dirs/<config name>), EPOCHS (config's),
# SCENES_PER_CITY (4), SAMPLES_PER_SCENE (10), SEED (0), PYTHON (.venv/bin/python).
# The configs read DATA_ROOT themselves (data_root = '{{$DATA_ROOT:...}}'): every loader and metric follows it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
CONFIG=${CONFIG:-configs/uniad_nexusflow/tiny_nexusflow_onephase_sgeo.py}
export DATA_ROOT=${DATA_ROOT:-data/nuscenes-synth}
NAME=$(basename "$CONFIG" .py)
WORK_DIR=${WORK_DIR:-work_dirs/$NAME}
EXTRA=()
if [ -n "${EPOCHS:-}" ]; then EXTRA+=(train_cfg.max_epochs="$EPOCHS" train_cfg.val_interval="$EPOCHS"); fi

if [ ! -f "$DATA_ROOT/nuscenes_infos_temporal_val.pkl" ]; then
  echo "== generating the synthetic nuScenes set in $DATA_ROOT"
  "$PYTHON" tools/create_data.py synthetic --out-dir "$DATA_ROOT" --scenes-per-city "${SCENES_PER_CITY:-4}" \
      --samples-per-scene "${SAMPLES_PER_SCENE:-10}" --seed "${SEED:-0}" --with-infos
fi
echo "== training $CONFIG into $WORK_DIR"
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" ${EXTRA[@]+--cfg-options "${EXTRA[@]}"}
CKPT=$(cat "$WORK_DIR/last_checkpoint")
echo "== testing $CKPT"
"$PYTHON" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test"
