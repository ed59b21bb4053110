"""saga-harness: chaos."""
