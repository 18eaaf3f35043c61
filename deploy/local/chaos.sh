#!/usr/bin/env bash
# The full chaos run (tests/chaos): 100,000 reminders through the whole path with replicas of
# every service while replicas are killed and the broker, PostgreSQL and Redis restarted once
# each. Release builds, so the run measures the services rather than debug code. It prints its
# figures (lost, sent twice, cap violations, recovery seconds) as `chaos:` lines.
# Override the size with CHAOS_REMINDERS, CHAOS_SECONDS, CHAOS_KILL_EVERY_SECONDS.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/env.sh"
bash "$here/toolchain.sh"
bash "$here/up.sh"
source "$here/env.sh"
cd "$REPO"
export CHAOS_REMINDERS="${CHAOS_REMINDERS:-100000}"
export CHAOS_SECONDS="${CHAOS_SECONDS:-900}"
cargo build --release --workspace --bins --locked
cargo test --release --locked -p recobro-tests --test chaos -- --nocapture
