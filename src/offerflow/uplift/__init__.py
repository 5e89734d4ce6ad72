"""Uplift modelling building blocks: learners, propensities and debiasing, cross-fitting, evaluation.

`offerflow.train` composes them into the train stage; each module is usable (and tested) on its own.
"""
