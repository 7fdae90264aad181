"""Human reports: one renderer per result type (results*.py), pinned by golden tests."""
