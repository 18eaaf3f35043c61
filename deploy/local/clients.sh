#!/usr/bin/env bash
# Sourced by test.sh: the clients the end-to-end tests drive besides our own (tests/e2e/clients.rs).
# ghz, which finds methods by v1alpha reflection alone, from the Go module proxy; and the Python
# example's virtualenv (examples/python/requirements.txt, from PyPI) with the stubs generated
# from proto/ into examples/python/gen; Debian's Chromium and a DevTools driver for the sandbox
# checkout's page. Each is installed once. Exports RECOBRO_GHZ, RECOBRO_EXAMPLE_PYTHON and
# RECOBRO_CHROMIUM.
clients_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
clients_tools="${RECOBRO_TOOLS_DIR:-$HOME/.cache/recobro-tools}"
ghz_version="v0.121.0"
export RECOBRO_GHZ="$clients_tools/bin/ghz-$ghz_version"
if [ ! -x "$RECOBRO_GHZ" ]; then
  echo "[clients] go install ghz $ghz_version (once)"
  mkdir -p "$clients_tools/bin"
  clients_build="$(mktemp -d)"
  PATH="$PATH:/usr/local/go/bin:$clients_tools/go/bin" GOBIN="$clients_build" GOFLAGS=-mod=mod \
    go install "github.com/bojand/ghz/cmd/ghz@$ghz_version"
  mv "$clients_build/ghz" "$RECOBRO_GHZ"
  rmdir "$clients_build"
fi
# One virtualenv per pinned set of requirements (the example's, and the browser driver's);
# the marker says its install finished.
clients_requirements=("$clients_repo/examples/python/requirements.txt" "$clients_repo/tests/browser/requirements.txt")
clients_venv="$clients_tools/python-clients-$(cat "${clients_requirements[@]}" | sha256sum | cut -c1-12)"
if [ ! -e "$clients_venv/.installed" ]; then
  echo "[clients] pip install the Python example's and the browser driver's requirements (once)"
  rm -rf "$clients_venv"
  python3 -m venv "$clients_venv"
  "$clients_venv/bin/pip" install -q -r "${clients_requirements[0]}" -r "${clients_requirements[1]}"
  touch "$clients_venv/.installed"
fi
export RECOBRO_EXAMPLE_PYTHON="$clients_venv/bin/python"
# A real browser for the sandbox checkout's page (tests/browser/pay_in_sandbox.py): Debian's.
if ! command -v chromium >/dev/null; then
  echo "[clients] apt-get install chromium (once)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
fi
export RECOBRO_CHROMIUM="$(command -v chromium)"
rm -rf "$clients_repo/examples/python/gen"
mkdir -p "$clients_repo/examples/python/gen"
(cd "$clients_repo" && "$RECOBRO_EXAMPLE_PYTHON" -m grpc_tools.protoc -I proto \
  --python_out=examples/python/gen --grpc_python_out=examples/python/gen proto/recobro/v1/*.proto)
