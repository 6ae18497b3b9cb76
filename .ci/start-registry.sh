#!/usr/bin/env bash
# Install what the image tests need for a local OCI registry with an ECR-like login; idempotent.
#
#   .ci/start-registry.sh                      # install docker-registry, htpasswd, skopeo only
#   .ci/start-registry.sh PORT USER PASSWORD   # ... and serve a registry on 127.0.0.1:PORT
#
# The tests start their own registry (a fixture, config in a temporary folder), with user AWS
# and the password moto's ECR get_authorization_token decodes to. The second form is for trying
# `deploy image --registry-url http://127.0.0.1:PORT` by hand; stop it with
# `kill $(cat /run/eurosat-ci/registry-PORT.pid)`.
set -euo pipefail

say() { echo "start-registry: $*" >&2; }

missing=()
command -v docker-registry >/dev/null || command -v registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
command -v skopeo >/dev/null || missing+=(skopeo)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}" >&2
fi
# Debian's package may start its own registry on :5000 where a service manager runs; ours listen
# elsewhere, so it does not matter.

[ $# -eq 0 ] && { say "registry tools installed"; exit 0; }
[ $# -eq 3 ] || { say "usage: $0 [PORT USER PASSWORD]"; exit 2; }
port=$1 user=$2 password=$3
run_dir=${EUROSAT_CI_RUN_DIR:-/run/eurosat-ci}
dir=${EUROSAT_CI_DIR:-/var/lib/eurosat-ci}/registry-$port
pidfile="$run_dir/registry-$port.pid"
mkdir -p "$dir/data" "$run_dir"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    say "registry already running on 127.0.0.1:$port"; exit 0
fi
htpasswd -Bbc "$dir/htpasswd" "$user" "$password" 2>/dev/null
cat >"$dir/config.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd: {realm: eurosat-ci, path: $dir/htpasswd}
EOF
binary=$(command -v docker-registry || command -v registry)
setsid nohup "$binary" serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
echo $! >"$pidfile"
for _ in $(seq 1 50); do
    if python3 -c "import urllib.request as r, urllib.error as e, sys
try: r.urlopen('http://127.0.0.1:$port/v2/', timeout=1)
except e.HTTPError as x: sys.exit(0 if x.code == 401 else 1)
except Exception: sys.exit(1)"; then
        say "registry on http://127.0.0.1:$port (user $user)"; exit 0
    fi
    sleep 0.2
done
say "registry did not answer; see $dir/registry.log"; exit 1
