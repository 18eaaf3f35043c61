#!/usr/bin/env bash
# Sourced by test.sh: the clients the end-to-end tests drive besides our own (tests/e2e/clients.rs).
# ghz, which finds methods by v1alpha reflection alone, from the Go module proxy; and the Python
# example's virtualenv (examples/python/requirements.txt, from PyPI) with the stubs generated
# from proto/ into examples/python/gen. Each is installed once into the tools cache. Exports
# RECOBRO_GHZ and RECOBRO_EXAMPLE_PYTHON.
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
# One virtualenv per pinned set of requirements; the marker says its install finished.
clients_venv="$clients_tools/python-example-$(sha256sum "$clients_repo/examples/python/requirements.txt" | cut -c1-12)"
if [ ! -e "$clients_venv/.installed" ]; then
  echo "[clients] pip install the Python example's requirements (once)"
  rm -rf "$clients_venv"
  python3 -m venv "$clients_venv"
  "$clients_venv/bin/pip" install -q -r "$clients_repo/examples/python/requirements.txt"
  touch "$clients_venv/.installed"
fi
export RECOBRO_EXAMPLE_PYTHON="$clients_venv/bin/python"
rm -rf "$clients_repo/examples/python/gen"
mkdir -p "$clients_repo/examples/python/gen"
(cd "$clients_repo" && "$RECOBRO_EXAMPLE_PYTHON" -m grpc_tools.protoc -I proto \
  --python_out=examples/python/gen --grpc_python_out=examples/python/gen proto/recobro/v1/*.proto)
