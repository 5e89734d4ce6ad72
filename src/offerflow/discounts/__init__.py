"""Personalized discounts: the continuous-treatment scenario on offerflow's layers.

A history where staff chose discount sizes (observational) and a small randomized test are ingested
declaratively (ingest, validation), the discount's effect on profit is debiased with econml's double
machine learning (effects), the model's ranking is checked on the randomized test (evaluation), and a
level per customer is chosen by the exact customer allocator and valued off-policy (policy). stages.py
holds the thin runners; simulator.py the ground truth the tests check against.
"""
