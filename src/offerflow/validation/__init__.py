"""Validation: Great Expectations suites (templates filled from params.yaml), cross-dataset checks,
failure records that name file, column and values, and the reports of one validation run."""
