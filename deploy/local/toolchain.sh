#!/usr/bin/env bash
# Installs what building Recobro needs and a fresh machine may lack: a C toolchain, zlib and OpenSSL
# for librdkafka (built from source by the rdkafka crate), Java and Maven for the Kafka broker,
# and Rust itself. Fast when everything is already there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v make >/dev/null || missing+=(make)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
# OpenSSL headers: librdkafka speaks SASL_SSL (SCRAM-SHA-512) to the broker with the system libssl.
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
command -v java >/dev/null || missing+=(default-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v curl >/dev/null || missing+=(curl)
command -v unzip >/dev/null || missing+=(unzip)
# Python virtualenvs for the manifest check and the Python client example.
python3 -c "import ensurepip" 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[toolchain] apt-get install ${missing[*]}"
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  # Debian's Rust is older than this workspace needs (edition 2024); say so rather than guess.
  echo "[toolchain] cargo not found: install Rust >= 1.88 with rustup, then run again" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The dependency check of `make lint` (deny.toml); built from crates.io once, a few minutes.
if ! cargo deny --version >/dev/null 2>&1; then
  echo "[toolchain] cargo install cargo-deny (once)"
  cargo install cargo-deny --locked --no-default-features --version 0.20.2 >/dev/null 2>&1 \
    || { echo "[toolchain] cargo install cargo-deny failed" >&2; exit 1; }
fi
# Go, for the tools built from the Go module proxy (kustomize, buf, ghz, the monitoring check):
# Debian's is too old, so the toolchain comes from the proxy itself, as `go` fetches newer ones.
go_version="1.26.8"
tools="${RECOBRO_TOOLS_DIR:-$HOME/.cache/recobro-tools}"
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ] && [ ! -x "$tools/go/bin/go" ]; then
  echo "[toolchain] Go $go_version from the Go module proxy (once)"
  mkdir -p "$tools"
  zip="$(mktemp)"
  curl -fsSL -o "$zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$go_version.linux-amd64.zip"
  unpacked="$(mktemp -d)"
  unzip -q "$zip" -d "$unpacked"
  mv "$unpacked/golang.org/toolchain@v0.0.1-go$go_version.linux-amd64" "$tools/go"
  chmod -R a+x "$tools/go/bin" "$tools/go/pkg/tool"
  rm -rf "$zip" "$unpacked"
fi
