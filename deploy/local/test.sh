#!/usr/bin/env bash
# Every test: unit tests, and end-to-end tests of the real binaries against the real local
# stack (Kafka, Redis, PostgreSQL), which this script installs and starts if needed.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/env.sh"
bash "$here/toolchain.sh"
bash "$here/up.sh"
cd "$REPO"
# The end-to-end tests start the binaries, so they must be built first.
cargo build --workspace --bins --locked
cargo test --workspace --locked
