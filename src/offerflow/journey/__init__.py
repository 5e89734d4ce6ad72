"""Multi-step customer journeys: a seeded MDP testbed, fitted-Q-iteration policies under a budget, and
off-policy evaluation with guarantees.

One-step targeting ignores that offers interact over time: an ad sells nothing by itself yet makes a
later large discount work. This package learns sequences from logged journeys and checks, in a testbed
whose truth is known, that the log alone would have told which sequence policy is worth publishing.

Modules: config (params), simulator (testbed), state (history features), policies, journey_log (log
schema and decision data), models, fqi (fitted Q iteration / evaluation), budget (cost-multiplier
tuning), baselines (look-alike family), learning (train all policies at one budget), sequential_ope
(estimators and bounds), evaluation (truth and estimates), next_action (publishable table), figures,
study (the stages' domain functions chained).
"""
