"""saga-harness: reports."""
