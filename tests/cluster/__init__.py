"""The test bed: a real Kubernetes control plane built from Go modules, and a node agent.

``build.sh`` builds the binaries into a cache outside the repository; ``controlplane``
starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler on the bed's own
network; ``node_agent`` registers a Node and runs its pods as local processes in network
namespaces of their own; ``bed`` ties them together for pytest and for the demo.
"""
