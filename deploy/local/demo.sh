#!/usr/bin/env bash
# One command for a newcomer: local stack up, services built and started, a demo portfolio
# published, and the reminders it causes shown as they are delivered by the sandbox provider.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/env.sh"
bash "$here/toolchain.sh"
bash "$here/up.sh"
cd "$REPO"
cargo build --workspace --bins
# The default window is weekdays 09:00-18:00 in each debtor's time zone; the demo opens it so
# reminders flow whatever the hour. Set RECOBRO_CONTACT_DAYS/HOURS to see the real rules.
export RECOBRO_CONTACT_DAYS="${RECOBRO_CONTACT_DAYS:-mon-sun}"
export RECOBRO_CONTACT_HOURS="${RECOBRO_CONTACT_HOURS:-00:00-24:00}"
echo "[demo] contact window: $RECOBRO_CONTACT_DAYS $RECOBRO_CONTACT_HOURS (debtor's local time)"
bash "$here/services.sh" start
"$REPO/target/debug/recobro-demo"
