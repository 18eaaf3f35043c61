#!/usr/bin/env bash
# Every benchmark in one go against the real local stack (release builds): one line per figure
# in the format of docs/benchmarks.md (`name: number`), then a table comparing each figure with
# the newest one recorded there under the same name (the first entry in the file whose line
# starts with that name; entries are newest first). Recording is by hand: a figure goes into
# docs/benchmarks.md with the command, the machine, the date and the commit under it.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/env.sh"
bash "$here/toolchain.sh"
bash "$here/up.sh"
source "$here/env.sh"
cd "$REPO"
commit="$(git rev-parse --short HEAD)"
# RECOBRO_PG_DURABLE=1: PostgreSQL with fsync and synchronous commit on (up.sh restarts it so);
# each figure's name then says so, and is compared with the durable figure recorded.
durable_name=""
[ "${RECOBRO_PG_DURABLE:-0}" = 1 ] && durable_name=1
echo "PostgreSQL fsync and synchronous commit: $([ -n "$durable_name" ] && echo on || echo off)"
dirty="$(git status --porcelain --untracked-files=no | head -1)"
[[ -n "$dirty" ]] && commit="$commit+changes"

benches=(
  "recobro-accounts ingest"
  "recobro-accounts grpc_auth"
  "recobro-channels sends"
  "recobro-channels contact_budget"
  "recobro-channels reply_accuracy"
  "recobro-scheduling month_end"
  "recobro-tests steady_state"
)
packages=()
for bench in "${benches[@]}"; do packages+=(-p "${bench%% *}"); done
cargo bench --locked --no-run "${packages[@]}"

figures="$(mktemp)"
held_out="$(mktemp -d)"
trap 'rm -rf "$figures" "$held_out"' EXIT
# The classifier is measured on the sets kept unseen (tests/replies/holdout-*), not on the
# ones it was tuned on.
cp tests/replies/holdout-*.tsv "$held_out/"
export BENCH_REPLIES_DIR="$held_out"
failed=()
for bench in "${benches[@]}"; do
  package="${bench%% *}"
  name="${bench##* }"
  echo "== $package $name ($commit)"
  out="$(mktemp)"
  if ! cargo bench --locked -q -p "$package" --bench "$name" >"$out" 2>&1; then
    # Its error is in its output; the other benchmarks still run, and the run fails at the end.
    cat "$out"
    failed+=("$package $name")
    rm -f "$out"
    continue
  fi
  cat "$out"
  # A per-set figure of reply_accuracy is named after its set ("holdout-aa replies read right").
  awk '/^[^ ].* replies\):$/ { set = $1 " "; next }
       /^ / { sub(/^ +/, ""); $0 = set $0 }
       /^[^:]+: [0-9]+(\.[0-9]+)?$/ { if (durable) sub(/: /, ", PostgreSQL durable: "); print }' \
    durable="${durable_name}" "$out" >>"$figures"
  rm -f "$out"
done

# Each service's resident memory when idle: release builds started as `make demo` starts them
# (TLS, tokens, every consumer and loop running), measured after 20 s with nothing to do.
cargo build --release --locked --bins -p recobro-accounts -p recobro-scheduling -p recobro-channels -p recobro-testkit
release_dir="${CARGO_TARGET_DIR:-$REPO/target}/release"
bash "$here/services.sh" stop >/dev/null
RECOBRO_BIN_DIR="$release_dir" bash "$here/services.sh" start
sleep 20
for service in accounts scheduling channels; do
  pid="$(cat "$RECOBRO_STACK_DIR/services/$service.pid")"
  kib="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")"
  echo "$service idle resident memory, MiB: $((kib / 1024))" | tee -a "$figures"
done
bash "$here/services.sh" stop

echo
echo "figure | now ($commit) | recorded | ratio"
echo "--- | --- | --- | ---"
awk -v doc="docs/benchmarks.md" '
  BEGIN {
    # The newest recorded entry for each name: the first line starting with it.
    while ((getline line < doc) > 0) {
      if (line !~ /: [0-9]+(\.[0-9]+)?$/) continue
      value = line; sub(/.*: /, "", value)
      entries[++n] = line; values[n] = value
    }
  }
  {
    value = $0; sub(/.*: /, "", value)
    name = $0; sub(/: [0-9.]+$/, "", name)
    recorded = ""; ratio = "-"
    for (i = 1; i <= n; i++) {
      if (index(entries[i], name) == 1) { recorded = values[i]; break }
    }
    if (recorded != "" && recorded + 0 != 0) ratio = sprintf("%.2f", value / recorded)
    printf "%s | %s | %s | %s\n", name, value, (recorded == "" ? "-" : recorded), ratio
  }
' "$figures"
echo "(ratio is now / recorded; for seconds and milliseconds lower is better)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "benchmarks that failed: ${failed[*]}" >&2
  exit 1
fi
