#!/usr/bin/env bash
# Start a private Docker engine for the container tests; idempotent.
#
#   eval "$(.ci/start-docker.sh)"     # exports DOCKER_HOST (and DOCKER_BUILDKIT=0 without buildx)
#
# Installs docker.io when dockerd is missing, and runs dockerd with its own data root, exec root,
# pid file and socket under $EUROSAT_CI_DIR, so it never touches a system Docker. Progress goes to
# stderr; only the export lines go to stdout. Stop it with .ci/stop-docker.sh.
set -euo pipefail

CI_DIR=${EUROSAT_CI_DIR:-/var/lib/eurosat-ci}
RUN_DIR=${EUROSAT_CI_RUN_DIR:-/run/eurosat-ci}   # short: containerd's socket paths must fit 108 bytes
SOCKET="$RUN_DIR/docker.sock"
export DOCKER_HOST="unix://$SOCKET"

say() { echo "start-docker: $*" >&2; }

print_env() {
    echo "export DOCKER_HOST=$DOCKER_HOST"
    if ! docker buildx version >/dev/null 2>&1; then
        echo "export DOCKER_BUILDKIT=0"   # the legacy builder: no buildx plugin here
    fi
}

if docker version >/dev/null 2>&1; then
    say "engine already answers at $DOCKER_HOST"
    print_env
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    say "must run as root to start dockerd"; exit 1
fi

if ! command -v dockerd >/dev/null; then
    say "installing docker.io"
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends docker.io >&2
fi

mkdir -p "$CI_DIR/docker" "$RUN_DIR/exec"
PIDFILE="$RUN_DIR/dockerd.pid"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    say "dockerd $(cat "$PIDFILE") is running but not answering yet"
else
    rm -f "$PIDFILE" "$SOCKET"
    say "starting dockerd (data root $CI_DIR/docker, log $CI_DIR/dockerd.log)"
    setsid nohup dockerd \
        --data-root "$CI_DIR/docker" --exec-root "$RUN_DIR/exec" --pidfile "$PIDFILE" \
        -H "$DOCKER_HOST" >>"$CI_DIR/dockerd.log" 2>&1 </dev/null &
fi

for _ in $(seq 1 120); do
    if docker version >/dev/null 2>&1; then
        say "ready: $(docker version --format '{{.Server.Version}}') at $DOCKER_HOST"
        print_env
        exit 0
    fi
    sleep 0.5
done
say "dockerd did not answer within 60 s; last log lines:"
tail -n 20 "$CI_DIR/dockerd.log" >&2
exit 1
