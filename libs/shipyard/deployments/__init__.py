"""Model deployments run without a cluster (embedded mode); on a cluster the operator runs them."""
