"""saga-harness: contracts."""
