#!/usr/bin/env bash
# The public API's contract checks: `buf lint` on proto/, and `buf breaking` against the previous
# commit on main (a removed or renumbered field, a changed type, a removed method or enum value
# fails). A self-check first proves the breaking rules bite: a copy of proto/ with a field
# removed must be refused. buf comes from the Go module proxy, built once into the tools cache.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tools="${RECOBRO_TOOLS_DIR:-$HOME/.cache/recobro-tools}"
buf_version="v1.75.0"
export PATH="$PATH:/usr/local/go/bin:$tools/go/bin"
buf="$tools/bin/buf-$buf_version"
if [ ! -x "$buf" ]; then
  command -v go >/dev/null || { echo "[proto] go not found (the Go toolchain builds buf)" >&2; exit 1; }
  echo "[proto] go install buf $buf_version (once)"
  mkdir -p "$tools/bin"
  build="$(mktemp -d)"
  GOBIN="$build" GOFLAGS=-mod=mod go install "github.com/bufbuild/buf/cmd/buf@$buf_version"
  mv "$build/buf" "$buf"
  rmdir "$build"
fi
cd "$repo"
"$buf" lint proto
echo "[proto] buf lint: clean"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp -r proto/buf.yaml proto/recobro "$scratch/"
# Field 1 of the first message in events.proto, removed: a change every client would feel.
python3 - "$scratch/recobro/v1/events.proto" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
changed = re.sub(r"\n[ \t]+[^\n]*= 1;", "\n", text, count=1)
assert changed != text, "no field numbered 1 found to remove"
open(path, "w").write(changed)
PY
if "$buf" breaking "$scratch" --against proto >/dev/null 2>&1; then
  echo "[proto] self-check failed: buf breaking accepted a removed field" >&2
  exit 1
fi
echo "[proto] self-check: buf breaking refuses a removed field"

if ! git rev-parse --verify --quiet HEAD~1 >/dev/null; then
  echo "[proto] no previous commit to compare with (a shallow clone?): fetch main's history" >&2
  exit 1
fi
"$buf" breaking proto --against ".git#ref=HEAD~1,subdir=proto"
echo "[proto] buf breaking: compatible with the previous commit ($(git rev-parse --short HEAD~1))"
