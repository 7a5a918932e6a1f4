#!/usr/bin/env bash
# Builds the project image (Dockerfile) on a machine with no container daemon and no container
# registry: only Debian's mirror and the package registries (PyPI, npm) are reached.
#
#   1. a minimal Debian bookworm root file system made by debootstrap (variant minbase, with
#      python3, python3-venv, git and ca-certificates), cached as a tarball under
#      ~/.cache/modelship/image/ and keyed by its inputs (suite, mirror, packages, architecture,
#      debootstrap's version and this recipe);
#   2. two local base images made from it with buildah (`buildah from scratch`, the tarball
#      unpacked into the mounted container, `buildah commit`): the Python base, brought up to
#      date from bookworm-updates and bookworm-security, and a build-only node base (the Python
#      base plus Debian's nodejs and npm) for the Dockerfile's ui stage;
#   3. `buildah bud` of the Dockerfile with those two bases as its PYTHON_BASE and NODE_BASE
#      build args (their defaults, python:3.11-slim and node:20-slim, are for a registry).
#
# Storage is buildah's vfs driver under /var/tmp/modelship-image (never the repository), and
# every RUN is chroot-isolated in the host's network namespace (no network is set up or changed).
#
#   bash scripts/build-image.sh [--tag IMAGE]    # default ghcr.io/modelship/modelship:dev
#   bash scripts/build-image.sh --clean           # remove the storage and the cached root fs
#
# Needs root, and the Debian packages buildah and debootstrap (installed when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "[build-image $(date +%H:%M:%S)] $*" >&2; }

IMAGE="${MODELSHIP_IMAGE:-ghcr.io/modelship/modelship:dev}"
SUITE=bookworm
MIRROR="${MODELSHIP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${MODELSHIP_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# python3 is 3.11 in bookworm; passwd (groupadd, useradd) is in minbase already.
PACKAGES="python3,python3-venv,git,ca-certificates"
NODE_PACKAGES="nodejs npm"
CACHE="${MODELSHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelship}/image"
STORE="${MODELSHIP_IMAGE_STORE:-/var/tmp/modelship-image}"
HOST_CA_BUNDLE="${MODELSHIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
ARCH="$(dpkg --print-architecture 2>/dev/null || uname -m)"

bah() { buildah --root "$STORE/storage" --runroot "$STORE/run" --storage-driver vfs "$@"; }

# The root file system: what debootstrap makes, with docs and apt's lists removed, and dpkg
# told to leave docs out of later installs too (as Debian's own slim images do).
make_rootfs() {
  local root="$1"
  debootstrap --variant=minbase --include="$PACKAGES" --arch="$ARCH" "$SUITE" "$root" "$MIRROR" >&2
  cat > "$root/etc/dpkg/dpkg.cfg.d/modelship-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  # The container engine provides these at run time; the host's must not leak into the image.
  rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" > "$root/etc/apt/sources.list"
}

# Everything the root file system depends on; a change to any of it makes a new tarball.
rootfs_key() {
  { echo "$SUITE $MIRROR $SECURITY_MIRROR $PACKAGES $ARCH"; debootstrap --version 2>/dev/null || true; declare -f make_rootfs; } \
    | sha256sum | cut -c1-16
}

ensure_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

has_image() { bah images --quiet "$1" >/dev/null 2>&1; }

# Step 1: the tarball, built in a temporary directory and renamed into the cache when complete.
ensure_rootfs() {
  local tar="$CACHE/rootfs-$SUITE-$(rootfs_key).tar"
  if [ ! -f "$tar" ]; then
    log "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR"
    mkdir -p "$CACHE"
    local tmp
    tmp="$(mktemp -d "$CACHE/.rootfs.XXXXXX")"
    make_rootfs "$tmp/root"
    tar -C "$tmp/root" --numeric-owner --xattrs -cf "$tmp/rootfs.tar" .
    mv "$tmp/rootfs.tar" "$tar"
    rm -rf "$tmp"
    log "root file system cached: $tar ($(du -h "$tar" | cut -f1))"
  fi
  echo "$tar"
}

# Step 2a: the Python base, from the tarball, with the updates of the day applied.
ensure_base() {
  local tar="$1" name="localhost/modelship-base:$SUITE-$(rootfs_key)"
  if ! has_image "$name"; then
    log "base image $name"
    local ctr mnt
    ctr="$(bah from scratch)"
    mnt="$(bah mount "$ctr")"
    tar -C "$mnt" --numeric-owner --xattrs -xf "$tar"
    bah umount "$ctr" >/dev/null
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
      --cmd /bin/bash --label "org.modelship.base.rootfs=$(basename "$tar")" "$ctr"
    bah run --isolation chroot "$ctr" -- sh -ec \
      'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get upgrade -y -qq; apt-get clean; rm -rf /var/lib/apt/lists/*' >&2
    bah commit --rm --quiet "$ctr" "$name" >/dev/null
  fi
  echo "$name"
}

# Step 2b: the node base for the ui stage only (never part of the runtime image).
ensure_node_base() {
  local base="$1" name="${1/modelship-base:/modelship-base-node:}"
  if ! has_image "$name"; then
    log "node base image $name (Debian's $NODE_PACKAGES)"
    local ctr
    ctr="$(bah from --pull-never "$base")"
    bah run --isolation chroot "$ctr" -- sh -ec \
      "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq --no-install-recommends $NODE_PACKAGES; apt-get clean; rm -rf /var/lib/apt/lists/*" >&2
    bah commit --rm --quiet "$ctr" "$name" >/dev/null
  fi
  echo "$name"
}

# The build args of the Dockerfile this script sets, and the local base images they name.
build_args() {
  local base node
  base="$(ensure_base "$(ensure_rootfs)")"
  node="$(ensure_node_base "$base")"
  echo "PYTHON_BASE=$base"
  echo "NODE_BASE=$node"
}

main() {
  case "${1:-}" in
    --clean)
      log "removing $STORE and $CACHE"
      bah rm --all >/dev/null 2>&1 || true
      rm -rf "$STORE" "$CACHE"
      exit 0 ;;
    --tag) IMAGE="$2"; shift 2 ;;
    "") ;;
    *) echo "build-image: unknown argument $1 (see the comment at the top of $0)" >&2; exit 2 ;;
  esac

  if [ "$(id -u)" -ne 0 ]; then echo "build-image: run as root (debootstrap and buildah's chroot isolation need it)" >&2; exit 1; fi
  ensure_tools
  mkdir -p "$STORE"
  start=$(date +%s)
  build_args > "$STORE/build-args"   # a file, not a pipe: a failing step stops the script
  bud_args=()
  while read -r a; do bud_args+=(--build-arg "$a"); done < "$STORE/build-args"
  log "buildah bud ${bud_args[*]} -t $IMAGE"
  # --layers: a change under operator/ reuses the dependency layer; --force-rm: a failed step leaves
  # no container behind; --pull never: the bases are local.
  # The RUN steps (npm ci, pip install) see the host's CA bundle in place of the image's, so that
  # a build behind a TLS-inspecting proxy trusts what the host trusts (Debian's node and pip read
  # that file); a bind mount, never committed: the image keeps Debian's bundle.
  bah bud --isolation chroot --layers --force-rm --pull=never "${bud_args[@]}" \
    --volume "$HOST_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" -t "$IMAGE" -f Dockerfile . >&2
  log "built $IMAGE in $(($(date +%s) - start)) s: $(bah images --format '{{.Size}}' "$IMAGE")"
  echo "$IMAGE"
}

# Sourced (tests/unit/test_image.py calls the functions above), nothing runs.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
