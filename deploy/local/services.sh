#!/usr/bin/env bash
# Starts or stops the three Recobro services in the background against the local stack.
#   services.sh start   # build must exist: cargo build --workspace --bins
#   services.sh stop
# RECOBRO_BIN_DIR: where the binaries are (default target/debug; the benchmarks use a release
# build's).
# The services inherit this script's environment (env.sh: stack URLs, TLS, JWKS, issuer).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/env.sh"
dir="$RECOBRO_STACK_DIR/services"
bin="${RECOBRO_BIN_DIR:-$REPO/target/debug}"
mkdir -p "$dir"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local name=$1 port=$2 pid
  pid="$(cat "$dir/$name.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "[services] $name already running (pid $pid)"
    return
  fi
  # Each service as its own principal: its Kafka user, PostgreSQL role and Redis user, with the
  # passwords in its own folder. Its schema is migrated first by its owner role.
  RECOBRO_SECRETS_DIR="$RECOBRO_STACK_SECRETS/$name-owner" RECOBRO_DATABASE_USER="${name}_owner" \
    "$bin/recobro-$name" migrate >"$dir/$name.log" 2>&1 \
    || { echo "[services] recobro-$name migrate failed:" >&2; tail -n 20 "$dir/$name.log" >&2; exit 1; }
  RECOBRO_SECRETS_DIR="$RECOBRO_STACK_SECRETS/$name" RECOBRO_KAFKA_USERNAME="$name" \
    RECOBRO_DATABASE_USER="$name" RECOBRO_REDIS_USERNAME="$name" \
    nohup "$bin/recobro-$name" >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
  for _ in $(seq 1 150); do
    port_open "$port" && { echo "[services] $name up on :$port (log: $dir/$name.log)"; return; }
    kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null || break
    sleep 0.2
  done
  echo "[services] $name did not start; its log:" >&2
  tail -n 30 "$dir/$name.log" >&2
  exit 1
}

stop() {
  local name=$1 pid
  pid="$(cat "$dir/$name.pid" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  rm -f "$dir/$name.pid"
}

case "${1:-}" in
  # pki.sh is idempotent (≈1 s): it makes sure the certificates exist and are not about to expire.
  start)
    bash "$here/pki.sh" >/dev/null
    # The services' topics and consumer groups, as the admin principal grants them.
    "$bin/recobro-stack" grant
    start accounts 50051; start scheduling 50052; start channels 50053 ;;
  stop) stop channels; stop scheduling; stop accounts ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
