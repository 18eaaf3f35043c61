#!/usr/bin/env bash
# Every test: unit tests, and end-to-end tests of the real binaries against the real local
# stack (Kafka, Redis, PostgreSQL), which this script installs and starts if needed.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/env.sh"
bash "$here/toolchain.sh"
# ghz and the Python example, for tests/e2e/clients.rs.
source "$here/clients.sh"
bash "$here/up.sh"
# Again, for what up.sh may just have made (the token signing key id).
source "$here/env.sh"
cd "$REPO"
# The end-to-end tests start the binaries, so they must be built first.
cargo build --workspace --bins --locked
log="$(mktemp)"
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "all tests: %d passed, %d failed\n", passed, failed }' "$log"
rm -f "$log"
exit "$status"
