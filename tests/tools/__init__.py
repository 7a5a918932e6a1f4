"""Tools from outside the project (kubeconform), built from the Go module proxy into the cache."""
