#!/usr/bin/env bash
# Renders every kustomize overlay in k8s/overlays and checks the output offline: built-in kinds
# against Kubernetes' OpenAPI schemas (kubernetes-validate, strict: an unknown field fails),
# custom resources against their CRDs (KEDA's, from its Go module) or, for Strimzi, against the
# subset in strimzi.yaml (crds.py). Installs its tools once, from the Go module proxy and PyPI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tools="${RECOBRO_TOOLS_DIR:-$HOME/.cache/recobro-tools}"
kubernetes_version="1.33.0"
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "[manifests] go not found (the Go toolchain builds kustomize)" >&2; exit 1; }
mkdir -p "$tools/bin"
if [ ! -x "$tools/bin/kustomize" ]; then
  echo "[manifests] go install kustomize (once)"
  GOBIN="$tools/bin" GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
fi
if [ ! -x "$tools/venv/bin/kubernetes-validate" ]; then
  echo "[manifests] pip install kubernetes-validate (once)"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q kubernetes-validate==1.37.0
fi
keda_crds="$(cd "$tools" && go mod download -json github.com/kedacore/keda/v2@v2.17.2 |
  "$tools/venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')/config/crd/bases"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
rendered=()
for overlay in "$repo"/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  "$tools/bin/kustomize" build "$overlay" >"$out/$name.yaml"
  echo "[manifests] rendered overlay $name: $(grep -c '^kind:' "$out/$name.yaml") resources"
  rendered+=("$out/$name.yaml")
done
"$tools/venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "$kubernetes_version" "${rendered[@]}"
echo "[manifests] built-in kinds valid against Kubernetes $kubernetes_version (strict)"
"$tools/venv/bin/python" "$here/crds.py" \
  "$keda_crds/keda.sh_scaledobjects.yaml" "$keda_crds/keda.sh_triggerauthentications.yaml" \
  "$here/strimzi.yaml" -- "${rendered[@]}"
