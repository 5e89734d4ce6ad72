"""Building blocks of the validate stage (suites, GX session, failure records, cross checks).

The stage's public entry points live in `offerflow.validate`.
"""
