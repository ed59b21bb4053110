"""saga-harness: harness."""
