#!/usr/bin/env bash
# One command for a newcomer: local stack up, services built and started, a demo portfolio
# published, and the reminders it causes shown as they are delivered by the sandbox provider.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/env.sh"
bash "$here/toolchain.sh"
bash "$here/up.sh"
# Again, for what up.sh may just have made (the token signing key id).
source "$here/env.sh"
cd "$REPO"
cargo build --workspace --bins
# The operator's window (default weekdays 09:00-18:00, debtor's time) is opened for the demo, so
# only each debtor's legal rule pack decides when reminders go out.
export RECOBRO_CONTACT_DAYS="${RECOBRO_CONTACT_DAYS:-mon-sun}"
export RECOBRO_CONTACT_HOURS="${RECOBRO_CONTACT_HOURS:-00:00-24:00}"
echo "[demo] contact window: $RECOBRO_CONTACT_DAYS $RECOBRO_CONTACT_HOURS (debtor's local time)"
# A company's statement waits for the rest of its invoices (30 s by default); the demo's arrive
# together, so 5 s is plenty.
export RECOBRO_STATEMENT_GATHER_SECONDS="${RECOBRO_STATEMENT_GATHER_SECONDS:-5}"
bash "$here/services.sh" start
"$REPO/target/debug/recobro-demo"
