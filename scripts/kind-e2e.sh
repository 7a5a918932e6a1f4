#!/usr/bin/env bash
# The same e2e suite on kind, for machines with Docker, kind and a container registry (not these:
# they have no engine and reach no registry; scripts/build-image.sh builds the image here, but kind
# runs its nodes as containers of kindest/node, pulled from a registry).
# Builds the project image, loads it into a kind cluster and points the tests at it.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER="${KIND_CLUSTER:-modelship-e2e}"
IMAGE="ghcr.io/modelship/modelship:dev"
command -v kind >/dev/null || { echo "kind-e2e: install kind (https://kind.sigs.k8s.io) first" >&2; exit 1; }
docker build -t "$IMAGE" .
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --image kindest/node:v1.36.3
kind load docker-image "$IMAGE" --name "$CLUSTER"
# The tests call pod IPs from this host: route the pod network through the kind node.
node_ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$CLUSTER-control-plane")"
sudo ip route replace 10.244.0.0/16 via "$node_ip"
kubeconfig="$(mktemp)"
kind get kubeconfig --name "$CLUSTER" > "$kubeconfig"
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'; }
MODELSHIP_KUBECONFIG="$kubeconfig" .venv/bin/python -m pytest tests/e2e "$@"
