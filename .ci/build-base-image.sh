#!/usr/bin/env bash
# Make the local base image the container tests build on (no registry can be pulled from here):
# Debian bookworm minbase + python3 (3.11) + venv, made with debootstrap. Idempotent and cached:
#
#   .ci/build-base-image.sh [IMAGE]    # default eurosat-ci/bookworm-python:3.11
#
# 1. IMAGE already in the engine            -> nothing to do (about 0.1 s)
# 2. the tarball in $EUROSAT_CI_CACHE exists -> import it (a few seconds)
# 3. otherwise debootstrap (about 2.5 min), trim docs/locales/apt lists, tar, import.
# Imports into the Docker engine at $DOCKER_HOST when one answers, else into buildah's storage.
set -euo pipefail

IMAGE=${1:-eurosat-ci/bookworm-python:3.11}
CACHE=${EUROSAT_CI_CACHE:-/var/cache/eurosat-ci}
TARBALL="$CACHE/bookworm-python3-minbase.tar"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { echo "build-base-image: $*" >&2; }

if docker version >/dev/null 2>&1; then
    engine=docker
    have_image() { docker image inspect "$IMAGE" >/dev/null 2>&1; }
    import_tarball() { docker import --change 'CMD ["python3"]' "$TARBALL" "$IMAGE" >/dev/null; }
elif command -v buildah >/dev/null; then
    engine=buildah
    have_image() { buildah inspect --type image "$IMAGE" >/dev/null 2>&1; }
    import_tarball() {
        local ctr
        ctr=$(buildah from scratch)
        buildah add "$ctr" "$TARBALL" / >/dev/null
        buildah config --cmd python3 "$ctr"
        buildah commit --rm "$ctr" "$IMAGE" >/dev/null
    }
else
    say "neither a Docker engine (DOCKER_HOST=${DOCKER_HOST:-}) nor buildah is available"; exit 1
fi

if have_image; then
    say "$IMAGE already in $engine"; exit 0
fi

if [ ! -s "$TARBALL" ]; then
    command -v debootstrap >/dev/null || {
        say "installing debootstrap"
        apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >&2
    }
    mkdir -p "$CACHE"
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$rootfs" "$TARBALL.part"' EXIT
    say "debootstrap bookworm into $rootfs (about 2.5 min)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >&2
    # What a slim image drops: documentation, man pages, locales, apt's package lists and cache.
    rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
    tar --numeric-owner -C "$rootfs" -cf "$TARBALL.part" .
    mv "$TARBALL.part" "$TARBALL"
fi
say "importing $TARBALL as $IMAGE into $engine"
import_tarball
say "done: $IMAGE"
