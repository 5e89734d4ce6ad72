"""The stages of each pipeline, declared as data: one module per pipeline, assembled by offerflow.pipeline.

stage.py says what a declaration holds (Stage, Input, Output); offers.py, discounts.py and journey.py
list the stages of the pipeline of that name, in the order they run.
"""
