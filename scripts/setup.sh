#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine, idempotently:
# system packages, the project's virtual environment, and the test bed's binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[setup $(date +%H:%M:%S)] $*" >&2; }

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v pgrep >/dev/null || missing+=(procps)
command -v git >/dev/null || missing+=(git)
command -v nft >/dev/null || missing+=(nftables)        # kube-proxy's nftables mode, in the bed's node
command -v nsenter >/dev/null || missing+=(util-linux)  # runs the bed's processes in its node namespace
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)   # tests/browser: Playwright drives Debian's browser
command -v npm >/dev/null || missing+=(npm)             # builds the web UI's bundle (ui/)
command -v mvn >/dev/null || missing+=(maven)          # MLflow's Java client test (tests/java)
command -v curl >/dev/null || missing+=(curl)          # the REST example of docs/tracking.md, tested
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: run as root to install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  log "installing the project and its test extra into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e '.[test]' >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The web UI's bundle, rebuilt when ui/'s sources or lockfile change (keyed by their hash).
UI_OUT=operator/modelship/tracking/server/ui_static
ui_hash="$(find ui -path ui/node_modules -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
if [ "$(cat "$UI_OUT/.source-hash" 2>/dev/null)" != "$ui_hash" ]; then
  log "building the web UI (npm ci, npm run build)"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error >&2 && npm run --silent build >&2)
  echo "$ui_hash" > "$UI_OUT/.source-hash"
fi

# helm renders the chart in the unit tests; built from the Go module proxy like the bed.
# Its ldflags carry what helm's own Makefile puts there: its version (`helm version`), and a
# Kubernetes release for .Capabilities.KubeVersion when no cluster is asked (`helm template`,
# `helm lint`): without it helm assumes v1.20 and the chart's `kubeVersion: >=1.30.0-0` refuses
# to render. That release is the bed's (tests/cluster/build.sh), where helm's Makefile would
# take its client-go's. A stamp of the flags rebuilds a helm built with others.
HELM_VERSION="${MODELSHIP_HELM_VERSION:-v3.16.4}"
HELM_DIR="${MODELSHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelship}/tools/helm-${HELM_VERSION}"
K8S_PIN="$(sed -n 's/^K8S_VERSION="${MODELSHIP_K8S_VERSION:-v\([0-9]*\)\.\([0-9]*\)\.[0-9]*}"$/\1 \2/p' tests/cluster/build.sh)"
read -r K8S_MAJOR K8S_MINOR <<< "$K8S_PIN"
[ -n "$K8S_MINOR" ] || { echo "setup: no K8S_VERSION pin in tests/cluster/build.sh" >&2; exit 1; }
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in pkg/chartutil pkg/lint/rules; do
  HELM_LDFLAGS+=" -X helm.sh/helm/v3/${pkg}.k8sVersionMajor=${K8S_MAJOR} -X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${K8S_MINOR}"
done
if [ ! -x "$HELM_DIR/helm" ] || [ "$(cat "$HELM_DIR/.ldflags" 2>/dev/null)" != "$HELM_LDFLAGS" ]; then
  log "building helm ${HELM_VERSION} for Kubernetes ${K8S_MAJOR}.${K8S_MINOR}"
  # Built aside (a name no helm-*/helm glob finds), then renamed into place: a helm that
  # another process runs or looks up is never half written.
  aside="$(dirname "$HELM_DIR")/.building-helm-${HELM_VERSION}"
  rm -rf "$aside" && mkdir -p "$HELM_DIR"
  GOBIN="$aside" GOTOOLCHAIN=local CGO_ENABLED=0 go install -trimpath -ldflags "$HELM_LDFLAGS" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
  mv -f "$aside/helm" "$HELM_DIR/helm" && rmdir "$aside"
  echo "$HELM_LDFLAGS" > "$HELM_DIR/.ldflags"
fi

# luahealth runs the Argo CD health checks (manifests/argocd) under gopher-lua, the Lua of
# Argo CD; built from the Go module proxy into the same cache, keyed by version and source.
log "luahealth $(.venv/bin/python -m tests.argocd.luahealth)"
# podsecurity runs k8s.io/pod-security-admission, the API server's own Pod Security library,
# over every pod the chart and the operator make (tests/unit/test_pod_security.py); built from
# the Go module proxy into the same cache, keyed by the library's version and the source.
log "podsecurity $(.venv/bin/python -m tests.tools.podsecurity)"
# kubeconform (Go module proxy) and the JSON schemas of the pinned Kubernetes release, made
# from that release's own OpenAPI document in the k8s.io/kubernetes module (nothing else downloaded).
log "kubeconform and schemas $(.venv/bin/python -m tests.tools.kubeconform)"

# MLflow's Java client and the test's Maven plugins, into the Maven cache (~/.m2, outside the
# repository), so the test stage builds tests/java offline. go-offline does not fetch plugin
# dependencies: surefire's JUnit provider is fetched by name.
M2="$HOME/.m2/repository"
if [ ! -d "$M2/org/mlflow/mlflow-client/2.17.2" ] || [ ! -d "$M2/org/apache/maven/surefire/surefire-junit-platform/3.2.5" ]; then
  log "filling the Maven cache for tests/java"
  mvn -q -B -f tests/java/pom.xml dependency:go-offline >&2
  mvn -q -B -f tests/java/pom.xml dependency:get -Dartifact=org.apache.maven.surefire:surefire-junit-platform:3.2.5 >&2
fi

log "test bed binaries"
bash tests/cluster/build.sh >/dev/null
log "ready"
