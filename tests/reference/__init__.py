"""Test-only oracles: independent references the project's own solvers are checked against."""
