#!/usr/bin/env bash
# Stop the engine started by .ci/start-docker.sh and remove what dockerd leaves behind
# (its containers, the docker0 bridge, its iptables chains, mounts under its exec root).
# Images stay in $EUROSAT_CI_DIR/docker so the next run reuses the base image and build cache.
set -uo pipefail

RUN_DIR=${EUROSAT_CI_RUN_DIR:-/run/eurosat-ci}
PIDFILE="$RUN_DIR/dockerd.pid"
export DOCKER_HOST="unix://$RUN_DIR/docker.sock"

say() { echo "stop-docker: $*" >&2; }

if [ ! -f "$PIDFILE" ]; then
    say "no dockerd started by start-docker.sh"; exit 0
fi
pid=$(cat "$PIDFILE")
if docker version >/dev/null 2>&1; then
    ids=$(docker ps -aq)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null
fi
if kill -0 "$pid" 2>/dev/null; then
    say "stopping dockerd $pid"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
fi
rm -f "$PIDFILE"

# Mounts under the exec root (netns, overlay) outlive dockerd.
grep -o " $RUN_DIR/[^ ]*" /proc/mounts | sort -r | while read -r mnt; do umount -l "$mnt" 2>/dev/null; done
ip link show docker0 >/dev/null 2>&1 && ip link delete docker0
if command -v iptables >/dev/null; then
    for table in nat filter; do
        # Unhook the DOCKER* chains from the built-in chains, then flush and delete them.
        iptables -t "$table" -S 2>/dev/null | grep -E '^-A (PREROUTING|OUTPUT|POSTROUTING|FORWARD) .*(DOCKER|docker0)' |
            sed 's/^-A/-D/' | while read -r rule; do eval iptables -t "$table" "$rule" 2>/dev/null; done
        for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N DOCKER/ {print $2}'); do
            iptables -t "$table" -F "$chain" 2>/dev/null
        done
        for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N DOCKER/ {print $2}'); do
            iptables -t "$table" -X "$chain" 2>/dev/null
        done
    done
fi
say "stopped"
