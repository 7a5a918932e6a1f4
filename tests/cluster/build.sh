#!/usr/bin/env bash
# Builds the test bed from Go modules fetched through the Go module proxy: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy and kubectl of one
# pinned Kubernetes release; CoreDNS (cluster DNS); Traefik v3 (the Gateway API data
# plane); and takes the Gateway API standard-channel CRDs and Traefik's own CRDs out of
# those modules. No upstream source is committed: go.mod files of ours require the
# upstream modules (and repeat the replace directives a module needs, read from its own
# go.mod).
#
# Each component lands in a cache directory outside the repository keyed by its version,
# so a second run builds nothing. The last line printed is the bed's bin directory: a
# directory keyed by every version together, holding links to each binary, with
# ../manifests (the CRDs) and ../versions.json beside it.
#
# `build.sh kwok` builds (or finds) only kwok, the fake-node controller of
# sigs.k8s.io/kwok that a bed started with kwok nodes runs (scale tests, benchmarks/operator/),
# with the Stage objects it plays taken out of its module; its last line is kwok's bin
# directory, with ../manifests/stages.yaml beside it.
set -euo pipefail

WHAT="${1:-bed}"

K8S_VERSION="${MODELSHIP_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${MODELSHIP_ETCD_VERSION:-v3.6.8}"
COREDNS_VERSION="${MODELSHIP_COREDNS_VERSION:-v1.15.0}"
# Traefik v3.6 is the newest line whose module builds from the proxy alone: v3.7 requires
# github.com/traefik/traefik/dynamic/ext through a replace to a directory that is not in
# its module zip.
TRAEFIK_VERSION="${MODELSHIP_TRAEFIK_VERSION:-v3.6.12}"
# The Gateway API release Traefik TRAEFIK_VERSION is built against (checked below).
GATEWAY_API_VERSION="${MODELSHIP_GATEWAY_API_VERSION:-v1.4.0}"
KWOK_VERSION="${MODELSHIP_KWOK_VERSION:-v0.8.0}"
CACHE_ROOT="${MODELSHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelship}"
TESTBED="$CACHE_ROOT/testbed"
K8S_KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}"
K8S_BIN="$TESTBED/$K8S_KEY/bin"
COREDNS_BIN="$TESTBED/coredns-${COREDNS_VERSION}/bin"
TRAEFIK_DIR="$TESTBED/traefik-${TRAEFIK_VERSION}_gateway-api-${GATEWAY_API_VERSION}"
BED="$TESTBED/bed-${K8S_VERSION}_${ETCD_VERSION}_coredns-${COREDNS_VERSION}_traefik-${TRAEFIK_VERSION}_gwapi-${GATEWAY_API_VERSION}"
KWOK_DIR="$TESTBED/kwok-${KWOK_VERSION}"
K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl)

log() { echo "[build.sh $(date +%H:%M:%S)] $*" >&2; }

have_k8s() {
  [ -x "$K8S_BIN/etcd" ] || return 1
  for c in "${K8S_COMPONENTS[@]}"; do [ -x "$K8S_BIN/$c" ] || return 1; done
}
have_all() {
  have_k8s && [ -x "$COREDNS_BIN/coredns" ] && [ -x "$TRAEFIK_DIR/bin/traefik" ] \
    && [ -f "$TRAEFIK_DIR/manifests/gateway-api-standard.yaml" ] && [ -f "$TRAEFIK_DIR/manifests/traefik-crds.yaml" ] \
    && [ -f "$BED/versions.json" ]
}

have_kwok() { [ -x "$KWOK_DIR/bin/kwok" ] && [ -f "$KWOK_DIR/manifests/stages.yaml" ]; }
case "$WHAT" in
  bed) if have_all; then echo "$BED/bin"; exit 0; fi ;;
  kwok) if have_kwok; then echo "$KWOK_DIR/bin"; exit 0; fi ;;
  *) echo "build.sh: build what? 'bed' (the default) or 'kwok', not '$WHAT'" >&2; exit 2 ;;
esac

# Two runs on a machine whose cache is cold (CI beside a developer's tests) would build into
# the same directories and .tmp files at once: one builds, the others wait and find it built.
mkdir -p "$TESTBED"
exec 9>"$TESTBED/.build.lock"
if ! flock -n 9; then
  log "another build of the bed holds $TESTBED/.build.lock; waiting for it"
  flock 9
  if [ "$WHAT" = bed ] && have_all; then
    echo "$BED/bin"
    exit 0
  fi
  if [ "$WHAT" = kwok ] && have_kwok; then
    echo "$KWOK_DIR/bin"
    exit 0
  fi
fi

command -v go >/dev/null || { echo "build.sh: the Go toolchain is needed (go >= 1.26)" >&2; exit 1; }
export GOFLAGS="-mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0

# module_dir MODULE@VERSION -> the module's unpacked directory in the module cache.
module_dir() { go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'; }
module_gomod() { go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p'; }

# --- Kubernetes -------------------------------------------------------------------------
build_k8s() {
  have_k8s && return 0
  local work="$TESTBED/$K8S_KEY/src"
  mkdir -p "$K8S_BIN" "$work/k8s" "$work/etcd"
  # k8s.io/kubernetes v1.X.Y requires its staging modules at v0.0.0 and replaces them with
  # ./staging paths that do not exist outside its repository; we replace each with v0.X.Y.
  local staging="v0.${K8S_VERSION#v1.}"
  cd "$work/k8s"
  local upstream_mod
  upstream_mod="$(module_gomod "k8s.io/kubernetes@${K8S_VERSION}")"
  [ -f "$upstream_mod" ] || { echo "build.sh: could not fetch k8s.io/kubernetes@${K8S_VERSION}" >&2; exit 1; }
  {
    echo "module modelship.local/testbed/k8s"
    echo
    echo "go $(sed -n 's/^go \(.*\)$/\1/p' "$upstream_mod")"
    echo
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    echo
    echo "replace ("
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" | awk '{print $1}' | while read -r m; do
      # Only staging modules that the upstream go.mod requires; others (sample plugins) are not published.
      if grep -qE "^\s+${m//./\\.} v0\.0\.0" "$upstream_mod"; then
        echo "	${m} => ${m} ${staging}"
      fi
    done
    echo ")"
  } > go.mod
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${K8S_COMPONENTS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } > tools.go
  log "resolving modules for Kubernetes ${K8S_VERSION}"
  go mod tidy -e >&2
  local minor
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  local ver_flags="-X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean"
  ver_flags="$ver_flags -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
  for c in "${K8S_COMPONENTS[@]}"; do
    if [ ! -x "$K8S_BIN/$c" ]; then
      log "building $c"
      go build -trimpath -ldflags "-s -w ${ver_flags}" -o "$K8S_BIN/$c.tmp.$$" "k8s.io/kubernetes/cmd/$c" >&2
      mv "$K8S_BIN/$c.tmp.$$" "$K8S_BIN/$c"
    fi
  done

  # etcd: its own entry point, built from its published server module.
  cd "$work/etcd"
  printf 'module modelship.local/testbed/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
  cat > main.go <<'GO'
// The etcd server binary: etcd's own entry point, built from its published module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  log "resolving modules for etcd ${ETCD_VERSION}"
  go mod tidy >&2
  if [ ! -x "$K8S_BIN/etcd" ]; then
    log "building etcd"
    go build -trimpath -ldflags "-s -w" -o "$K8S_BIN/etcd.tmp.$$" . >&2
    mv "$K8S_BIN/etcd.tmp.$$" "$K8S_BIN/etcd"
  fi
}

# --- CoreDNS ----------------------------------------------------------------------------
# CoreDNS's own coremain with the plugins a cluster's Corefile uses; the cloud DNS
# plugins of the full build (Route 53, Azure, Cloud DNS...) are left out, which keeps the
# build short. The set is the one the bed's Corefile (tests/cluster/addons.py) names.
build_coredns() {
  [ -x "$COREDNS_BIN/coredns" ] && return 0
  local work="$TESTBED/coredns-${COREDNS_VERSION}/src"
  mkdir -p "$COREDNS_BIN" "$work"
  cd "$work"
  local upstream_mod
  upstream_mod="$(module_gomod "github.com/coredns/coredns@${COREDNS_VERSION}")"
  printf 'module modelship.local/testbed/coredns\n\ngo %s\n\nrequire github.com/coredns/coredns %s\n' \
    "$(sed -n 's/^go \(.*\)$/\1/p' "$upstream_mod")" "$COREDNS_VERSION" > go.mod
  cat > main.go <<'GO'
// CoreDNS with the plugins of a cluster's DNS: its own coremain, a smaller plugin set.
package main

import (
	_ "github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

func main() { coremain.Run() }
GO
  log "resolving modules for CoreDNS ${COREDNS_VERSION}"
  go mod tidy >&2
  log "building coredns"
  go build -trimpath -ldflags "-s -w" \
    -o "$COREDNS_BIN/coredns.tmp.$$" . >&2
  mv "$COREDNS_BIN/coredns.tmp.$$" "$COREDNS_BIN/coredns"
}

# --- Traefik and the Gateway API CRDs ---------------------------------------------------
build_traefik() {
  local work="$TRAEFIK_DIR/src"
  mkdir -p "$TRAEFIK_DIR/bin" "$TRAEFIK_DIR/manifests" "$work"
  cd "$work"
  local upstream_mod
  upstream_mod="$(module_gomod "github.com/traefik/traefik/v3@${TRAEFIK_VERSION}")"
  [ -f "$upstream_mod" ] || { echo "build.sh: could not fetch traefik ${TRAEFIK_VERSION}" >&2; exit 1; }
  local wanted
  wanted="$(awk '$1 == "sigs.k8s.io/gateway-api" {print $2}' "$upstream_mod")"
  if [ "$wanted" != "$GATEWAY_API_VERSION" ]; then
    echo "build.sh: traefik ${TRAEFIK_VERSION} is built against gateway-api ${wanted}, not ${GATEWAY_API_VERSION}; set MODELSHIP_GATEWAY_API_VERSION=${wanted}" >&2
    exit 1
  fi
  if [ ! -x "$TRAEFIK_DIR/bin/traefik" ]; then
    {
      echo "module modelship.local/testbed/traefik"
      echo
      echo "go $(sed -n 's/^go \(.*\)$/\1/p' "$upstream_mod")"
      echo
      echo "require github.com/traefik/traefik/v3 ${TRAEFIK_VERSION}"
      echo
      # A dependency's replace and exclude directives do not apply to the main module:
      # repeat Traefik's (its forks of go-http-auth, mux and minheap).
      sed -n '/^replace (/,/^)/p; /^replace [^(]/p; /^exclude /p' "$upstream_mod"
    } > go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/traefik/traefik/v3/cmd/traefik"\n' > tools.go
    log "resolving modules for Traefik ${TRAEFIK_VERSION}"
    go mod tidy -e >&2
    log "building traefik"
    go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION}" \
      -o "$TRAEFIK_DIR/bin/traefik.tmp.$$" github.com/traefik/traefik/v3/cmd/traefik >&2
    mv "$TRAEFIK_DIR/bin/traefik.tmp.$$" "$TRAEFIK_DIR/bin/traefik"
  fi
  # The CRDs come out of the modules themselves, never from a copy in this repository.
  local gw traefik_src
  gw="$(module_dir "sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}")"
  traefik_src="$(module_dir "github.com/traefik/traefik/v3@${TRAEFIK_VERSION}")"
  for f in "$gw"/config/crd/standard/*.yaml; do echo "---"; cat "$f"; done > "$TRAEFIK_DIR/manifests/gateway-api-standard.yaml.tmp.$$"
  mv "$TRAEFIK_DIR/manifests/gateway-api-standard.yaml.tmp.$$" "$TRAEFIK_DIR/manifests/gateway-api-standard.yaml"
  cp "$traefik_src/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" \
    "$TRAEFIK_DIR/manifests/traefik-crds.yaml"
}

# --- kwok (optional: fake nodes for scale tests) ----------------------------------------
# kwok's own cmd/kwok from its published module (its go.mod has no replace directives to
# repeat). kwok plays Stage objects on the nodes and pods it manages; kwokctl embeds its
# defaults, the kwok binary reads them from --config, so the "fast" set (nodes Ready with a
# Lease heartbeat; pods Running and Ready at once, deleted at once) is copied out of the
# module's kustomize/stage directories, never committed.
build_kwok() {
  local work="$KWOK_DIR/src"
  mkdir -p "$KWOK_DIR/bin" "$KWOK_DIR/manifests" "$work"
  cd "$work"
  local upstream_mod
  upstream_mod="$(module_gomod "sigs.k8s.io/kwok@${KWOK_VERSION}")"
  [ -f "$upstream_mod" ] || { echo "build.sh: could not fetch sigs.k8s.io/kwok@${KWOK_VERSION}" >&2; exit 1; }
  if [ ! -x "$KWOK_DIR/bin/kwok" ]; then
    printf 'module modelship.local/testbed/kwok\n\ngo %s\n\nrequire sigs.k8s.io/kwok %s\n' \
      "$(sed -n 's/^go \(.*\)$/\1/p' "$upstream_mod")" "$KWOK_VERSION" > go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/kwok/cmd/kwok"\n' > tools.go
    log "resolving modules for kwok ${KWOK_VERSION}"
    go mod tidy -e >&2
    log "building kwok"
    go build -trimpath -ldflags "-s -w" -o "$KWOK_DIR/bin/kwok.tmp.$$" sigs.k8s.io/kwok/cmd/kwok >&2
    mv "$KWOK_DIR/bin/kwok.tmp.$$" "$KWOK_DIR/bin/kwok"
  fi
  local src
  src="$(module_dir "sigs.k8s.io/kwok@${KWOK_VERSION}")/kustomize/stage"
  for f in "$src"/node/fast/*.yaml "$src"/node/heartbeat-with-lease/*.yaml "$src"/pod/fast/*.yaml; do
    case "$(basename "$f")" in kustomization.yaml) continue ;; esac
    echo "---"; cat "$f"
  done > "$KWOK_DIR/manifests/stages.yaml.tmp.$$"
  mv "$KWOK_DIR/manifests/stages.yaml.tmp.$$" "$KWOK_DIR/manifests/stages.yaml"
  printf '{"kwok": "%s"}\n' "$KWOK_VERSION" > "$KWOK_DIR/versions.json"
}

if [ "$WHAT" = kwok ]; then
  build_kwok
  have_kwok || { echo "build.sh: kwok is missing under $KWOK_DIR" >&2; exit 1; }
  log "done"
  echo "$KWOK_DIR/bin"
  exit 0
fi

build_k8s
build_coredns
build_traefik

mkdir -p "$BED/bin" "$BED/manifests"
for c in etcd "${K8S_COMPONENTS[@]}"; do ln -sfn "$K8S_BIN/$c" "$BED/bin/$c"; done
ln -sfn "$COREDNS_BIN/coredns" "$BED/bin/coredns"
ln -sfn "$TRAEFIK_DIR/bin/traefik" "$BED/bin/traefik"
for f in gateway-api-standard.yaml traefik-crds.yaml; do ln -sfn "$TRAEFIK_DIR/manifests/$f" "$BED/manifests/$f"; done
printf '{"kubernetes": "%s", "etcd": "%s", "coredns": "%s", "traefik": "%s", "gatewayAPI": "%s"}\n' \
  "$K8S_VERSION" "$ETCD_VERSION" "$COREDNS_VERSION" "$TRAEFIK_VERSION" "$GATEWAY_API_VERSION" > "$BED/versions.json"
have_all || { echo "build.sh: a binary is missing under $BED" >&2; exit 1; }
log "done"
echo "$BED/bin"
