"""Framework integrations; each module imports its framework, this package imports none."""
