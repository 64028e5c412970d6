#!/usr/bin/env bash
# One-command environment setup: creates .venv and installs the pinned stack (DESIGN.md "Stack").
#   bash tools/setup_env.sh            # uses ../shared/wheels as an mmcv wheel cache when it exists
# Environment: VENV (default .venv), PYTHON (default python3), MMCV_WHEEL_DIR (extra find-links folder).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

"$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/pip"
export PIP_CONSTRAINT="$(pwd)/requirements/constraints.txt"
PY="$VENV/bin/python"
# setuptools 77..81: >=77 for torch 2.13, <82 because the mmcv source build imports pkg_resources.
"$PIP" install --upgrade "pip>=23.2,<26" setuptools wheel ninja
"$PIP" install torch==2.13.0
"$PIP" install "numpy>=1.22,<2"

WHEEL_DIR=${MMCV_WHEEL_DIR:-}
if [ -z "$WHEEL_DIR" ] && [ -d ../shared/wheels ]; then WHEEL_DIR=$(cd ../shared/wheels && pwd); fi
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  echo "mmcv 2.1.0 with ops already installed"
elif [ -n "$WHEEL_DIR" ] && ls "$WHEEL_DIR"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  echo "Installing mmcv 2.1.0 from the wheel cache $WHEEL_DIR"
  "$PIP" install --no-build-isolation --find-links "$WHEEL_DIR" mmcv==2.1.0
else
  echo "Building mmcv 2.1.0 with ops from source (about 10 minutes on 2 cores)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "$PIP" install --no-build-isolation --no-binary mmcv mmcv==2.1.0
fi

"$PIP" install -r requirements/runtime.txt -r requirements/tests.txt
"$PIP" install --no-build-isolation --no-deps -e .
"$PY" -c "import mmcv.ops, mmdet, mmdet3d, nuscenes, projects.nexusflow; print('environment ok:', 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmdet3d', mmdet3d.__version__)"
