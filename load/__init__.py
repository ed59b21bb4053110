"""saga-harness: load."""
