#!/usr/bin/env bash
# Builds the test bed's control plane from Go modules fetched through the Go module
# proxy: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of one
# pinned Kubernetes release. No upstream source is committed: a go.mod of ours requires
# k8s.io/kubernetes and points every staging module at its published v0.X.Y twin.
#
# The binaries land in a cache outside the repository, keyed by version, so a second run
# costs nothing. Prints the bin directory on its last line.
set -euo pipefail

K8S_VERSION="${MODELSHIP_K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${MODELSHIP_ETCD_VERSION:-v3.6.8}"
CACHE_ROOT="${MODELSHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelship}"
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}"
BIN="$CACHE_ROOT/testbed/$KEY/bin"
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

have_all() {
  [ -x "$BIN/etcd" ] || return 1
  for c in "${COMPONENTS[@]}"; do [ -x "$BIN/$c" ] || return 1; done
}

if have_all; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: the Go toolchain is needed (go >= 1.26)" >&2; exit 1; }
export GOFLAGS="-mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export CGO_ENABLED=0
WORK="$CACHE_ROOT/testbed/$KEY/src"
mkdir -p "$BIN" "$WORK/k8s" "$WORK/etcd"
log() { echo "[build.sh $(date +%H:%M:%S)] $*" >&2; }

# --- Kubernetes -------------------------------------------------------------------------
# k8s.io/kubernetes v1.X.Y requires its staging modules at v0.0.0 and replaces them with
# ./staging paths that do not exist outside its repository; we replace each with v0.X.Y.
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
cd "$WORK/k8s"
upstream_mod="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
[ -f "$upstream_mod" ] || { echo "build.sh: could not fetch k8s.io/kubernetes@${K8S_VERSION}" >&2; exit 1; }
go_directive="$(sed -n 's/^go \(.*\)$/\1/p' "$upstream_mod")"
{
  echo "module modelship.local/testbed/k8s"
  echo
  echo "go ${go_directive}"
  echo
  echo "require k8s.io/kubernetes ${K8S_VERSION}"
  echo
  echo "replace ("
  grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" | awk '{print $1}' | while read -r m; do
    # Only staging modules that the upstream go.mod requires; others (sample plugins) are not published.
    if grep -qE "^\s+${m//./\\.} v0\.0\.0" "$upstream_mod"; then
      echo "	${m} => ${m} ${STAGING_VERSION}"
    fi
  done
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
log "resolving modules for Kubernetes ${K8S_VERSION}"
go mod tidy -e >&2
ver_flags="-X k8s.io/component-base/version.gitVersion=${K8S_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"
ver_flags="$ver_flags -X k8s.io/client-go/pkg/version.gitVersion=${K8S_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
for c in "${COMPONENTS[@]}"; do
  if [ ! -x "$BIN/$c" ]; then
    log "building $c"
    go build -trimpath -ldflags "-s -w ${ver_flags}" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c" >&2
    mv "$BIN/$c.tmp" "$BIN/$c"
  fi
done

# --- etcd -------------------------------------------------------------------------------
cd "$WORK/etcd"
cat > go.mod <<MOD
module modelship.local/testbed/etcd

go 1.24

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
MOD
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
if [ ! -x "$BIN/etcd" ]; then
  log "building etcd"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" . >&2
  mv "$BIN/etcd.tmp" "$BIN/etcd"
fi

have_all || { echo "build.sh: a binary is missing from $BIN" >&2; exit 1; }
log "done"
echo "$BIN"
