#!/usr/bin/env bash
# Stop the local Recobro stack. `--wipe` also deletes all its data ($RECOBRO_STACK_DIR), the dev
# PKI included; without it the certificates and token signing key stay (tokens keep verifying).
# `down.sh kafka|redis|postgres ...` stops only those (the chaos test restarts each once:
# this, then up.sh). Safe to run when nothing is running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

STACK="$RECOBRO_STACK_DIR"
say() { printf '[down] %s\n' "$*"; }
wipe=; only=
for arg in "$@"; do
  case "$arg" in
    --wipe) wipe=1 ;;
    kafka|redis|postgres) only+=" $arg" ;;
    *) say "unknown argument: $arg (--wipe, kafka, redis, postgres)"; exit 2 ;;
  esac
done
stopping() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }

# Kafka: SIGTERM gives a clean shutdown (no log recovery next start); KILL after 30 s.
pid="$(stopping kafka && cat "$STACK/kafka/kafka.pid" 2>/dev/null || true)"
if [ -n "$pid" ] && grep -qa 'kafka.Kafka' "/proc/$pid/cmdline" 2>/dev/null; then
  say "kafka: stopping (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then say "kafka: still alive after 30 s, killing"; kill -KILL "$pid"; fi
fi
stopping kafka && rm -f "$STACK/kafka/kafka.pid"

# Redis: SIGTERM to the pid it wrote; it writes its append-only file out before exiting.
pid="$(stopping redis && cat "$STACK/redis/redis.pid" 2>/dev/null || true)"
if [ -n "$pid" ] && grep -qa 'redis-server' "/proc/$pid/cmdline" 2>/dev/null; then
  say "redis: stopping (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
fi

# PostgreSQL: pg_ctl refuses to run as root, hence the postgres user.
if stopping postgres && [ -f "$STACK/pg/data/postmaster.pid" ]; then
  bin="/usr/lib/postgresql/$(cat "$STACK/pg/data/PG_VERSION")/bin"   # the version that made the data
  as_pg=(); [ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
  say "postgres: stopping"
  "${as_pg[@]}" "$bin/pg_ctl" stop -D "$STACK/pg/data" -m fast -w >/dev/null || true
fi

if [ -n "$wipe" ]; then
  case "$STACK" in /|"$HOME"|"") say "refusing to wipe '$STACK'"; exit 1;; esac
  say "wiping $STACK"
  rm -rf "$STACK"
elif [ -z "$only" ] && [ -d "$RECOBRO_PKI_DIR" ]; then
  say "pki: kept in $RECOBRO_PKI_DIR (--wipe deletes it)"
fi
say "stopped"
