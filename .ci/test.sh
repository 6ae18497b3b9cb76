#!/usr/bin/env bash
# The whole test suite: starts the Docker engine and the base image the container tests build on,
# runs every test in .venv, then the API tests again on the CPU-only torch build without
# torchvision. Services the tests need per run (moto server, registry, uvicorn) are fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(bash .ci/start-docker.sh)"
trap 'bash .ci/stop-docker.sh >/dev/null 2>&1 || true' EXIT
bash .ci/build-base-image.sh

.venv/bin/python -m pytest -p no:cacheprovider "$@"
bash .ci/api-cpu-check.sh
