#!/usr/bin/env bash
# Make sure a container engine answers the Docker Engine API, starting Podman's if none does.
#
#   bash tools/podman_service.sh            # prints the socket path, e.g. /run/podman/podman.sock
#   export DOCKER_HOST=unix://$(bash tools/podman_service.sh)
#
# Idempotent. When an engine already answers (on $DOCKER_HOST, Podman's socket or Docker's) it only
# prints that socket. Otherwise it
#   1. writes Workbay's settings to containers.conf: runtime runc (crun cannot run on hybrid
#      cgroup v1 hosts) and default_ulimits with soft == hard at or below this host's hard limits
#      (Podman 4.3's compatible API swaps soft and hard, and runc fails with "error setting rlimit"
#      above the host's): nofile = min(hard, 1048576), nproc = min(hard, 32768);
#   2. starts `podman system service --time=0 unix://SOCKET` in the background (nohup, own
#      session, log in /var/log/workbay-podman.log) under the same limits;
#   3. waits until GET /_ping answers OK, and prints the socket path.
# Messages go to stderr; stdout carries only the socket path.
#
# Environment (defaults for root; a non-root user gets Podman's rootless paths):
#   WORKBAY_PODMAN_SOCKET   socket to serve    (/run/podman/podman.sock)
#   WORKBAY_CONTAINERS_CONF containers.conf    (/etc/containers/containers.conf)
#   WORKBAY_PODMAN_LOG      service log        (/var/log/workbay-podman.log)
#   WORKBAY_PODMAN_WAIT     seconds to wait for the socket (60)
set -euo pipefail

MARKER="# Managed by Workbay (tools/podman_service.sh)."

if [ "$(id -u)" = 0 ]; then
  SOCK=${WORKBAY_PODMAN_SOCKET:-/run/podman/podman.sock}
  CONF=${WORKBAY_CONTAINERS_CONF:-/etc/containers/containers.conf}
  LOG=${WORKBAY_PODMAN_LOG:-/var/log/workbay-podman.log}
else
  runtime_dir=${XDG_RUNTIME_DIR:-/run/user/$(id -u)}
  SOCK=${WORKBAY_PODMAN_SOCKET:-$runtime_dir/podman/podman.sock}
  CONF=${WORKBAY_CONTAINERS_CONF:-${XDG_CONFIG_HOME:-$HOME/.config}/containers/containers.conf}
  LOG=${WORKBAY_PODMAN_LOG:-${XDG_STATE_HOME:-$HOME/.local/state}/workbay-podman.log}
fi
WAIT=${WORKBAY_PODMAN_WAIT:-60}

say() { echo "podman_service: $*" >&2; }
die() { say "error: $*"; exit 1; }

answers() {  # answers SOCKET: true when an engine there says OK to /_ping
  [ -S "$1" ] && [ "$(curl -s --max-time 5 --unix-socket "$1" http://d/_ping 2>/dev/null || true)" = OK ]
}

command -v curl >/dev/null || die "curl is not installed"

# 1. An engine that already answers wins.
candidates=()
if [[ ${DOCKER_HOST:-} == unix://* ]]; then candidates+=("${DOCKER_HOST#unix://}"); fi
candidates+=("$SOCK")
if [ -z "${WORKBAY_PODMAN_SOCKET:-}" ]; then candidates+=(/var/run/docker.sock); fi
for s in "${candidates[@]}"; do
  if answers "$s"; then
    echo "$s"
    exit 0
  fi
done

command -v podman >/dev/null || die "no container engine answers and podman is not installed (make setup installs podman and runc)"

# 2. Limits: soft == hard, at or below this host's hard limits.
cap() {  # cap HARD_LIMIT MAX
  if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi
}
NOFILE=$(cap "$(ulimit -Hn)" 1048576)
NPROC=$(cap "$(ulimit -Hu)" 32768)

settings() {
  cat <<EOF
$MARKER
# Rewritten when the script starts the service; edit outside this file (a drop-in) to override.
[containers]
default_ulimits = [
  "nofile=$NOFILE:$NOFILE",
  "nproc=$NPROC:$NPROC",
]

[engine]
runtime = "runc"
EOF
}

# 3. containers.conf: our own file (new, or one we wrote before) is rewritten; a file somebody
#    else wrote is left alone and our settings go to a drop-in that overrides it.
target=$CONF
if [ -s "$CONF" ] && ! head -n1 "$CONF" | grep -qF "$MARKER"; then
  target="$CONF.d/50-workbay.conf"
fi
mkdir -p "$(dirname "$target")"
tmp=$(mktemp "$target.XXXXXX")
settings >"$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$target"
say "wrote $target (runtime runc, ulimits nofile=$NOFILE nproc=$NPROC)"
if [ -n "${WORKBAY_CONTAINERS_CONF:-}" ] && [ "$target" = "$CONF" ]; then
  export CONTAINERS_CONF=$CONF   # a non-default file: tell Podman (it then reads only this one)
fi

# 4. Start the service, detached from this shell (own session, survives the caller).
mkdir -p "$(dirname "$SOCK")" "$(dirname "$LOG")"
if [ -e "$SOCK" ]; then
  rm -f "$SOCK"   # stale: nothing answered on it
fi
say "starting podman system service on unix://$SOCK (log: $LOG)"
(
  ulimit -n "$NOFILE"
  ulimit -u "$NPROC"
  cd /  # the service must not leave files in the caller's directory
  echo "=== $(date -Is) podman system service --time=0 unix://$SOCK" >>"$LOG"
  exec setsid -w nohup podman system service --time=0 "unix://$SOCK" </dev/null >>"$LOG" 2>&1
) &
pid=$!

# 5. Wait for /_ping.
deadline=$((SECONDS + WAIT))
until answers "$SOCK"; do
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -n 20 "$LOG" >&2 || true
    die "podman system service exited (see $LOG)"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    die "no answer on $SOCK after ${WAIT}s (see $LOG)"
  fi
  sleep 0.2
done
say "Podman's Docker-compatible API answers on $SOCK (pid $pid)"
echo "$SOCK"
