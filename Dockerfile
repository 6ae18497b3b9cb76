# The inference API: CPU-only torch, no torchvision, non-root, port 80, the shipped model baked in.
#
#   docker build -t eurosat-service .                      # or: python -m eurosat_service.entrypoints.deploy image
#   docker run --rm -p 8080:80 eurosat-service             # then http://127.0.0.1:8080/readyz
#
# Needs no BuildKit feature (no RUN --mount), so the legacy builder and buildah can build it too;
# the tests build it with docker's legacy builder.
# Build arguments:
#   BASE_IMAGE         the Python base of both stages (any Debian-like image with python3 + venv)
#   TORCH_INDEX_URL    the index torch and its dependencies come from: the CPU-only wheels, so the
#                      image never holds CUDA libraries
#   TORCH_FIND_LINKS   an extra page or folder of wheels (tests serve a local torch wheel with it)
#   TORCH_REQUIREMENT  which torch, e.g. "torch==2.5.1+cpu"
#   STRIP_SYMBOLS      "true" (default): strip the symbol tables of torch's libraries (-100 MB);
#                      installs binutils from the base's apt sources in the build stage
#   PIP_CERT           path of a CA bundle for pip inside the build stage, for egress through a TLS
#                      proxy: put the bundle in the context as docker/build-certs/pip-cert.pem and
#                      pass PIP_CERT=/build/certs/pip-cert.pem (`deploy image --pip-cert` does both).
#                      It only ever enters the build stage, so nothing of it is in the image.
#   VERSION, GIT_REVISION   recorded as OCI labels
ARG BASE_IMAGE=python:3.12-slim

# ---- build: a virtual environment with torch (CPU) and the dependencies; the code beside it ------
FROM ${BASE_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_FIND_LINKS=""
ARG TORCH_REQUIREMENT=torch
ARG STRIP_SYMBOLS=true
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/venv/bin:$PATH
WORKDIR /build
# Torch first, depending on nothing of the project, so its layers stay cached across code changes.
COPY docker/build-certs/ ./certs/
RUN python3 -m venv /opt/venv \
 && pip install --no-compile --index-url "$TORCH_INDEX_URL" \
        ${TORCH_FIND_LINKS:+--find-links "$TORCH_FIND_LINKS"} "$TORCH_REQUIREMENT" \
 && python3 -c "import torch; assert not torch.version.cuda, 'a CUDA torch build: use the CPU index'"
# Serving never uses torch's C++ tests, headers, CMake files, test binaries and test libraries
# (about 200 MB), nor the symbol tables of its libraries (about 100 MB; the dynamic symbols that
# linking needs stay). Keep torch_shm_manager (tensor sharing between processes).
RUN torch_dir=$(python3 -c "import importlib.util as u; print(u.find_spec('torch').submodule_search_locations[0])") \
 && cd "$torch_dir" \
 && rm -rf test include share \
 && find bin -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} + \
 && rm -f lib/*.a lib/libjitbackend_test.so lib/libtorchbind_test.so lib/libbackend_with_compiler.so \
          lib/libaoti_custom_ops.so \
 && if [ "$STRIP_SYMBOLS" = true ]; then \
        apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils >/dev/null \
        && find "$torch_dir" -name "*.so*" -type f -exec strip --strip-unneeded {} +; \
    fi \
 && cd / && python3 -c "import torch; torch.ones(2) @ torch.ones(2)"
# The dependencies alone (a stub package stands in for the code, then leaves), so a code change
# rebuilds and re-pushes only the small application layer, not the 550 MB environment. The stub's
# build/ folder goes too: its files are newer than the real ones and setuptools would keep them.
# README.md is optional here: a pattern that matches nothing copies nothing.
COPY pyproject.toml README.m[d] ./
RUN mkdir -p src/eurosat_service && touch src/eurosat_service/__init__.py \
 && pip install --no-compile . && pip uninstall --yes --quiet eurosat-service \
 && rm -rf src build
COPY src ./src
COPY docker/precompile_imports.py ./
# The code goes to /opt/app, found through a .pth file. Then byte-compile only what the API imports
# of torch and sympy (compiling them whole would add ~100 MB of .pyc), with unchecked hashes so the
# read-only, non-root runtime never recompiles. Cython sources and pip/setuptools go: serving needs
# neither. No torchvision.
RUN pip install --no-compile --no-deps --target /opt/app . \
 && echo /opt/app > "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/eurosat-app.pth" \
 && python3 precompile_imports.py /opt/app \
 && find /opt/venv /opt/app -type f \( -name "*.c" -o -name "*.pyx" -o -name "*.pxd" \) -delete \
 && pip uninstall --yes --quiet setuptools pip \
 && ! python3 -c "import torchvision" 2>/dev/null

# ---- runtime: the base, the environment, the model; nothing else ----------------------------------
FROM ${BASE_IMAGE}
# A user with no home and no shell; root owns every file, so the app cannot change itself.
RUN if command -v useradd >/dev/null; then \
        useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin --no-log-init app; \
    else \
        echo "app:x:10001:10001:eurosat-service:/nonexistent:/usr/sbin/nologin" >> /etc/passwd \
        && echo "app:x:10001:" >> /etc/group; \
    fi
# From the least to the most often changed: dependencies, model, code.
COPY --from=build /opt/venv /opt/venv
COPY models/eurosat-resnet18 /opt/eurosat-service/models/eurosat-resnet18
COPY --from=build /opt/app /opt/app
# The model shipped in the repo is the default; EUROSAT_MODEL_URI=s3://... serves another with the
# same image. numpy is left out on purpose (images are decoded with PIL): silence torch's note on it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONWARNINGS="ignore:Failed to initialize NumPy:UserWarning" \
    EUROSAT_HOST=0.0.0.0 \
    EUROSAT_PORT=80 \
    EUROSAT_MODEL_URI=/opt/eurosat-service/models/eurosat-resnet18 \
    EUROSAT_MODEL_CACHE_DIR=/tmp/eurosat-service/models
# Port 80 as non-root: Docker (20.10+) sets net.ipv4.ip_unprivileged_port_start=0 in a container's
# network namespace; on ECS/Fargate the task definition sets it (systemControls), see docs/container.md.
USER 10001:10001
EXPOSE 80
# ECS ignores HEALTHCHECK (the deploy job repeats it in the task definition); slim images have no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python3", "-c", "import os, sys, urllib.request as r; sys.exit(0 if r.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('EUROSAT_PORT', '80'), timeout=4).status == 200 else 1)"]
ARG VERSION=0.0.0
ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="eurosat-service" \
      org.opencontainers.image.description="EuroSAT land-cover classifier API (CPU)" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_REVISION}"
CMD ["python3", "-m", "eurosat_service.entrypoints.api"]
