"""Figures: drawn from the study's tables, PNG bytes identical when drawn twice."""

from __future__ import annotations

from pathlib import Path

from test_journey_support import small_study

from offerflow.journey.figures import plot_action_shares, plot_policy_values


def test_figures_are_written_and_byte_stable(tmp_path: Path) -> None:
    config, _, _, evaluation = small_study()
    first = plot_policy_values(evaluation.table, tmp_path / "a" / "values.png").read_bytes()
    again = plot_policy_values(evaluation.table, tmp_path / "b" / "values.png").read_bytes()
    assert first == again and first.startswith(b"\x89PNG")
    shares = plot_action_shares(evaluation.action_shares, config.actions, tmp_path / "a" / "shares.png").read_bytes()
    assert shares == plot_action_shares(evaluation.action_shares, config.actions, tmp_path / "b" / "shares.png").read_bytes()
    without_truth = evaluation.table.drop(columns=["true_value", "true_value_low", "true_value_high"])
    assert plot_policy_values(without_truth, tmp_path / "c" / "values.png").stat().st_size > 10_000  # a real log
