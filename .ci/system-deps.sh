#!/usr/bin/env bash
# System packages the test suite needs (Debian, as root): a Docker engine and debootstrap for the
# image tests, a local OCI registry and skopeo, Chromium for the browser test. Idempotent.
set -euo pipefail

packages=(docker.io debootstrap docker-registry apache2-utils skopeo chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "system-deps: all present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing ${missing[*]}; run as root (or install them) first" >&2
    exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system-deps: done"
