#!/usr/bin/env bash
# Renders every kustomize overlay in k8s/overlays and checks the output offline: built-in kinds
# against Kubernetes' OpenAPI schemas (kubernetes-validate, strict: an unknown field fails),
# custom resources against their CRDs (KEDA's and the Prometheus Operator's, from their Go
# modules) or, for Strimzi, against the subset in strimzi.yaml (crds.py); and the alert rules
# and dashboards' PromQL with Prometheus's own loader and parser (deploy/monitoring/check).
# Installs its tools once, from the Go module proxy and PyPI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tools="${RECOBRO_TOOLS_DIR:-$HOME/.cache/recobro-tools}"
kubernetes_version="1.33.0"
export PATH="$PATH:/usr/local/go/bin:$tools/go/bin"
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
module_dir() {  # a Go module's source, from the module proxy (cached)
  (cd "$tools" && go mod download -json "$1") |
    "$tools/venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}
keda_crds="$(module_dir github.com/kedacore/keda/v2@v2.17.2)/config/crd/bases"
prometheus_crds="$(module_dir github.com/prometheus-operator/prometheus-operator@v0.85.0)/example/prometheus-operator-crd"
# The alerts and the dashboards' PromQL, read by Prometheus's own rule loader and parser.
checker="$tools/bin/recobro-monitoring-check-$(sha256sum "$repo/deploy/monitoring/check/go.sum" | cut -c1-12)"
if [ ! -x "$checker" ]; then
  echo "[manifests] go build the monitoring check (once)"
  (cd "$repo/deploy/monitoring/check" && go build -o "$checker" .)
fi
"$checker" -rules "$repo/deploy/monitoring/rules.yaml" "$repo"/k8s/components/prometheus/dashboards/*.json
"$tools/venv/bin/python" - "$repo/deploy/monitoring/rules.yaml" "$repo/k8s/components/prometheus/prometheus-rule.yaml" <<'PY'
import sys, yaml
plain = yaml.safe_load(open(sys.argv[1]))["groups"]
operator = yaml.safe_load(open(sys.argv[2]))["spec"]["groups"]
if plain != operator:
    sys.exit("the PrometheusRule's groups differ from deploy/monitoring/rules.yaml")
print("[manifests] the PrometheusRule carries the same alerts as deploy/monitoring/rules.yaml")
PY

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
rendered=()
for overlay in "$repo"/k8s/overlays/*/; do
  name="$(basename "$overlay")"
  "$tools/bin/kustomize" build "$overlay" >"$out/$name.yaml"
  echo "[manifests] rendered overlay $name: $(grep -c '^kind:' "$out/$name.yaml") resources"
  rendered+=("$out/$name.yaml")
done
# Migrations: every Deployment migrates in its init container, or awaits a migration Job that
# the same overlay renders; the schema owner's password reaches no container but a migrating one.
"$tools/venv/bin/python" - "${rendered[@]}" <<'PY'
import sys, yaml
for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    jobs = {d["metadata"]["name"] for d in docs if d["kind"] == "Job"}
    for d in docs:
        if d["kind"] not in ("Deployment", "Job"):
            continue
        pod = d["spec"]["template"]["spec"]
        owner_volumes = {v["name"] for v in pod.get("volumes", [])
                         if v.get("secret", {}).get("secretName", "").endswith("-migrate")}
        name = d["metadata"]["name"]
        for c in pod.get("initContainers", []) + pod["containers"]:
            migrating = c.get("args") == ["migrate"]
            mounted = {m["name"] for m in c.get("volumeMounts", [])} & owner_volumes
            if mounted and not migrating:
                sys.exit(f"{path}: {name}/{c['name']} mounts a schema owner's password")
        if d["kind"] == "Deployment":
            steps = [c.get("args") for c in pod.get("initContainers", [])]
            if ["migrate"] in steps:
                continue
            if ["await-schema"] in steps and "recobro-migrate" in jobs:
                if owner_volumes:
                    sys.exit(f"{path}: {name} still declares the owner's Secret")
                continue
            sys.exit(f"{path}: {name} neither migrates nor awaits a migration Job")
print("[manifests] migrations: each service migrates in its init container or awaits the Job; owner passwords only where migrating")
PY
"$tools/venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "$kubernetes_version" "${rendered[@]}"
echo "[manifests] built-in kinds valid against Kubernetes $kubernetes_version (strict)"
"$tools/venv/bin/python" "$here/crds.py" \
  "$keda_crds/keda.sh_scaledobjects.yaml" "$keda_crds/keda.sh_triggerauthentications.yaml" \
  "$prometheus_crds/monitoring.coreos.com_podmonitors.yaml" \
  "$prometheus_crds/monitoring.coreos.com_prometheusrules.yaml" \
  "$here/strimzi.yaml" -- "${rendered[@]}"
