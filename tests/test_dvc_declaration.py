"""Headline metrics and plots as declared: small, unambiguous, complete (no DVC run; see test_dvc_team.py).

`dvc metrics show` once listed 209 keys and the uplift plots only the last CSV column; these checks keep
the declaration from drifting back: only headline files are DVC metrics, every stage that writes a
report has a headline of at most 15 numbers with names unique across the pipelines (so `dvc exp show`
needs no file prefixes), and every data plot names x, its y columns, a template, a title and axis labels.
"""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import ROOT, set_params
from offerflow.catalog import Catalog
from offerflow.config import load_params
from offerflow.dvcyaml import render_dvc_yaml
from offerflow.headline import _MISSING, HeadlineError, headline_metrics, resolve
from offerflow.pipeline import STAGES, Output, Stage

REPORT = {
    "selection": {"chosen": "t_learner/logistic", "criterion": "brier",
                  "scores": {"t_learner/logistic": {"brier": 0.18, "qini": 0.07}, "s_learner/lightgbm": {"brier": 0.19}}},
    "arms": {"dm2": {"qini": {"model": 0.0772, "heuristic": 0.0646}}, "dm3": {"qini": {"model": 0.0798}}},
    "rows": 41280,
}


def test_paths_expand_templates_and_wildcards():
    assert resolve(REPORT, "selection.scores.{selection.chosen}.brier") == 0.18
    assert resolve(REPORT, "arms.*.qini.model") == {"dm2": 0.0772, "dm3": 0.0798}
    assert resolve(REPORT, "arms.*.qini.heuristic") == {"dm2": 0.0646}  # dm3 has none: left out of the mapping
    assert resolve(REPORT, "selection.scores.{selection.missing}.brier") is _MISSING
    assert resolve(REPORT, "arms.*.auuc") is _MISSING and resolve(REPORT, "rows") == 41280


def _stage(headline) -> Stage:
    return Stage(name="demo", does="demo", help="demo", runner=lambda p: {}, params=(), inputs=(),
                 outputs=(Output("train_metrics", "report"),), code=(), phase="learn responses", headline=headline)


def test_headline_reads_the_reports_and_names_a_missing_key(project):
    params = load_params(project / "params.yaml")
    catalog = Catalog(params)
    catalog.path("train_metrics").parent.mkdir(parents=True, exist_ok=True)
    catalog.path("train_metrics").write_text(json.dumps(REPORT))
    stage = _stage((("learner", "train_metrics:selection.chosen"),
                    ("brier", "train_metrics:selection.scores.{selection.chosen}.brier"),
                    ("qini", "train_metrics:arms.*.qini.model"),
                    ("coverage", "train_metrics:vs_truth.coverage?")))
    assert headline_metrics(stage, params, catalog) == {"learner": "t_learner/logistic", "brier": 0.18,
                                                        "qini": {"dm2": 0.0772, "dm3": 0.0798}}
    with pytest.raises(HeadlineError, match=r"'auuc' reads 'selection.auuc' of reports/train_metrics.json"):
        headline_metrics(_stage((("auuc", "train_metrics:selection.auuc"),)), params, catalog)


def test_every_reporting_stage_has_a_small_headline_with_unique_names():
    seen: dict[str, str] = {}  # unique over all pipelines: the scenarios run beside the coupon plan
    for stage in STAGES:
        assert not [out.name for out in stage.outputs if out.kind == "metric"], f"{stage.name}: metrics come from its headline"
        if any(out.kind == "report" for out in stage.outputs):
            assert stage.headline, f"stage {stage.name} writes reports but declares no headline"
        assert len(stage.headline) <= 15, stage.name
        for key, pick in stage.headline:
            assert pick.split(":", 1)[0] in {out.name for out in stage.outputs}, (stage.name, key, pick)
            assert key not in seen, f"headline {key!r} of {stage.name} is also {seen[key]}'s"
            seen[key] = stage.name


def _dvc_yaml(project, **switches) -> dict:
    set_params(project, **switches)
    return yaml.safe_load(render_dvc_yaml(load_params(project / "params.yaml")))


@pytest.mark.parametrize("switches", [{}, {"discounts__enabled": True, "journey__enabled": True}])
def test_only_headlines_are_metrics_and_every_plot_is_labelled(project, switches):
    document = _dvc_yaml(project, **switches)
    metrics = [next(iter(entry)) for stage in document["stages"].values() for entry in stage.get("metrics", [])]
    assert metrics and all(path.startswith("reports/metrics/") for path in metrics)
    assert not any("plots" in stage for stage in document["stages"].values())  # all plots are top-level definitions
    data_plots = [entry for entry in document["plots"] if isinstance(entry, dict)]
    for entry in data_plots:
        (name, spec), = entry.items()
        assert {"template", "x", "y", "title", "x_label", "y_label"} <= set(spec), name
        assert isinstance(spec["y"], dict) and spec["y"], name
    names = {next(iter(entry)) for entry in data_plots}
    assert {"uplift_cumulative_gain_dm2", "uplift_qini_dm3", "budget_frontier", "allocation_shares"} <= names
    gain = next(entry["uplift_cumulative_gain_dm2"] for entry in data_plots if "uplift_cumulative_gain_dm2" in entry)
    assert gain["y"] == {"reports/plots/train_cumulative_gain.csv": ["dm2_model", "dm2_random", "dm2_heuristic"]}
    for template in {spec["template"] for entry in data_plots for spec in entry.values()}:
        builtin = template in {"simple", "linear", "scatter", "bar_horizontal", "bar_horizontal_sorted"}
        assert builtin or (ROOT / ".dvc/plots" / f"{template}.json").is_file(), template


def test_committed_dvc_lock_records_the_example_run_of_every_stage_and_output():
    """dvc.lock is committed after the example's `dvc repro`; after a pipeline change, rerun it and commit it."""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    declared = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(lock) == set(declared), "run `dvc repro` and commit dvc.lock"
    for name, stage in declared.items():
        outputs = {next(iter(e)) if isinstance(e, dict) else e for group in ("outs", "metrics") for e in stage.get(group, [])}
        assert {out["path"] for out in lock[name]["outs"]} == outputs, f"{name}: run `dvc repro` and commit dvc.lock"
        assert all(out.get("md5") for out in lock[name]["outs"]), name
    headlines = sorted((ROOT / "reports/metrics").glob("*.json"))
    assert [path.stem for path in headlines] == sorted(name for name, stage in declared.items() if "metrics" in stage)
