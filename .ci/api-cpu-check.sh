#!/usr/bin/env bash
# Proves the serving path needs torch alone: runs the API's tests in a venv holding the CPU-only
# torch wheel and no torchvision (tests that need torchvision skip themselves).
#
#   .ci/api-cpu-check.sh [extra pytest args]
#
# VENV_CPU (default .venv-cpu) is created if missing; TORCH_CPU (default torch==2.13.0, the
# CPU-only wheel on this machine's local wheel folder, Python 3.11) is what gets installed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV_CPU:-.venv-cpu}
TORCH_CPU=${TORCH_CPU:-torch==2.13.0}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
echo "== installing $TORCH_CPU, the project (serving dependencies only) and the test tools"
"$VENV/bin/pip" install -q "$TORCH_CPU"
"$VENV/bin/pip" install -q -e . pytest pytest-timeout httpx selenium
if "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torchvision') is None)"; then
  echo "== removing torchvision: serving must not need it"
  "$VENV/bin/pip" uninstall -y -q torchvision
fi

"$VENV/bin/python" - <<'PY'
import importlib.util, warnings
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch
assert importlib.util.find_spec("torchvision") is None, "torchvision is installed"
assert torch.version.cuda is None, f"torch {torch.__version__} is a CUDA build"
print(f"== torch {torch.__version__} (CPU-only), no torchvision")
PY

echo "== API tests on the CPU-only build"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  tests/unit/test_api_*.py tests/unit/test_micro_batcher.py tests/integration/test_api_*.py \
  tests/integration/test_model_file.py "$@"
