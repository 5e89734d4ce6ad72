"""DVC as a team uses it, on the session's `dvc repro` of the example (conftest.example_repro, copied once here).

What a data scientist does after a run: reads `dvc metrics show` and `dvc plots show`, pushes the data
to the team's remote, a colleague clones, pulls and finds nothing to reproduce (the budget sweep compared with
`dvc exp show --only-changed` is in test_dvc_pipeline). And the README's "use your own data" path: `dvc add`
the history, a local-directory remote, push, clone, pull, nothing to reproduce. Real dvc and git commands.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import BIN, commit, copy_run, dvc, ran_stages, set_params, team_repository, write_user_history
from offerflow.io import file_md5

pytestmark = pytest.mark.slow
UP_TO_DATE = "Data and pipelines are up to date."


def team_project(destination: Path) -> Path:
    """A team's repository with fewer learners and frontier points (the same dvc.yaml): for the own-data path."""
    project = team_repository(destination)
    set_params(project, train__candidates=[], optimize__frontier__points=8)
    return project


def clone_and_pull(project: Path, destination: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(project), str(destination)], check=True, capture_output=True)
    dvc(destination, "pull")
    return destination


@pytest.fixture(scope="module")
def repo(example_repro, tmp_path_factory) -> Path:
    """The session's `dvc repro` of the example, copied: this module adds a remote to it."""
    return copy_run(example_repro, tmp_path_factory.mktemp("team") / "project")


def test_metrics_show_lists_headlines_that_match_the_reports(repo):
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    headlines = {Path(path).stem: entry["data"] for path, entry in files.items()}
    assert set(headlines) == {"validate", "train", "probabilities", "optimize", "allocate", "evaluate", "publish"}

    def leaves(tree: dict) -> int:
        return sum(leaves(value) if isinstance(value, dict) else 1 for value in tree.values())

    assert all(leaves(values) <= 12 for values in headlines.values()), {k: leaves(v) for k, v in headlines.items()}
    assert sum(leaves(values) for values in headlines.values()) <= 50  # was 209

    model = json.loads((repo / "models/uplift_model.json").read_text())
    chosen = model["selection"]["chosen"]
    assert headlines["train"]["learner"] == chosen == model["name"]
    assert headlines["train"]["brier"] == model["selection"]["scores"][chosen]["brier"]
    optimize = json.loads((repo / "reports/optimize_metrics.json").read_text())
    assert headlines["optimize"]["budget"] == 10_000
    assert headlines["optimize"]["objective"] == pytest.approx(optimize["objective"], abs=1e-6)
    assert headlines["optimize"]["recommended_budget"] == optimize["frontier"]["recommendation"]["budget"]
    gate = json.loads((repo / "reports/policy_evaluation.json").read_text())
    assert headlines["evaluate"]["lower_bound"] == pytest.approx(gate["lower_bound"], abs=1e-6)
    # what was published, counted from the published file itself
    assignments = pd.read_csv(repo / "data/published/assignments.csv")
    assert headlines["publish"]["published_rows"] == len(assignments) == 5000
    assert headlines["publish"]["published_from"] == "customer_plan"
    assert headlines["allocate"]["customers_per_offer"] == assignments["offer"].value_counts().to_dict()
    assert headlines["validate"]["validation_passed"] is True


def test_plots_show_renders_model_against_random_and_heuristic_frontier_point_and_shares(repo):
    rendered = json.loads(dvc(repo, "plots", "show", "--json").stdout)["data"]
    for arm in ("dm2", "dm3"):
        for kind in ("cumulative_gain", "qini"):
            content = rendered[f"uplift_{kind}_{arm}"][0]["content"]
            series = {row["field"] for row in content["data"]["values"]}
            assert series == {f"{arm}_model", f"{arm}_random", f"{arm}_heuristic"}
            assert content["encoding"]["x"]["title"] and content["encoding"]["y"]["title"]
            assert arm in content["title"]["text"]
    frontier = rendered["budget_frontier"][0]["content"]
    by_file: dict[str, list] = {}
    for row in frontier["data"]["values"]:
        by_file.setdefault(row["filename"], []).append(row)
    assert len(by_file["budget_frontier.csv"]) == len(pd.read_csv(repo / "reports/plots/budget_frontier.csv")) > 2
    (point,) = by_file["budget_recommendation.csv"]
    optimize = json.loads((repo / "reports/optimize_metrics.json").read_text())
    assert float(point["budget"]) == pytest.approx(optimize["recommended_budget"])
    assert frontier["mark"]["point"]  # the single recommended row is drawn as a point
    shares = rendered["allocation_shares"][0]["content"]
    plan = pd.read_csv(repo / "data/processed/segment_plan.csv")
    assert len(shares["data"]["values"]) == len(plan) == 16 * 3
    assert shares["encoding"]["color"]["field"] == "offer"
    for segment, rows in plan.groupby("segment_id"):
        assert rows["share"].sum() == pytest.approx(1.0)
    assert {"uplift_qini_dm2", "budget_frontier_costs", "policy_evaluation"} <= set(rendered)
    html = dvc(repo, "plots", "show", "-o", "plots_html").stdout
    page = (repo / "plots_html/index.html").read_text()
    assert "dm2_heuristic" in page and "budget_recommendation.csv" in page, html
    shutil.rmtree(repo / "plots_html")


def test_push_to_a_local_remote_then_a_fresh_clone_pulls_and_has_nothing_to_reproduce(repo, tmp_path):
    dvc(repo, "remote", "add", "-d", "team", str(tmp_path / "remote"))
    commit(repo, "the team's remote")
    assert "pushed" in dvc(repo, "push").stdout
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True).stdout.split()
    assert "dvc.lock" in tracked and "reports/metrics/train.json" in tracked and "reports/plots/budget_frontier.csv" in tracked
    assert "reports/train_metrics.json" not in tracked and "models/uplift_model.joblib" not in tracked  # in the DVC cache

    clone = clone_and_pull(repo, tmp_path / "colleague")
    assert (clone / "models/uplift_model.joblib").read_bytes() == (repo / "models/uplift_model.joblib").read_bytes()
    assert UP_TO_DATE in dvc(clone, "status").stdout
    assert ran_stages(dvc(clone, "repro").stdout) == set()
    assert UP_TO_DATE in dvc(repo, "status").stdout


def test_own_data_dvc_add_remote_push_clone_pull(tmp_path):
    """README "Use your own data": history tracked by `dvc add` (simulator off, no true table), the customer plan
    published to files, pipeline regenerated, data on a remote; the user's history is never written."""
    project = team_project(tmp_path / "own")
    history = write_user_history(project)
    digest = file_md5(history)
    dvc(project, "add", "data/external/history.csv")
    assert (project / "data/external/history.csv.dvc").is_file()
    set_params(project, simulate__enabled=False, data__history="data/external/history.csv", data__true_probabilities=None,
               publish__source="customer_plan", publish__target="files")
    stale = subprocess.run([str(BIN / "offerflow"), "dvc-yaml", "--check"], cwd=project, capture_output=True, text=True)
    assert stale.returncode == 2  # dvc.yaml still describes the example
    subprocess.run([str(BIN / "offerflow"), "dvc-yaml"], cwd=project, check=True, capture_output=True)
    dvc(project, "remote", "add", "-d", "storage", str(tmp_path / "remote"))
    commit(project, "own history")
    assert ran_stages(dvc(project, "repro").stdout) == {"validate", "train", "probabilities", "optimize", "allocate",
                                                         "evaluate", "publish"}
    assert file_md5(history) == digest  # the user's history is an input, never an output
    assert yaml.safe_load((project / "data/published/state.json").read_text())["current_run_id"]
    assert not (project / "data/raw/simulated_history.csv").exists()
    commit(project, "own history run")
    dvc(project, "push")
    clone = clone_and_pull(project, tmp_path / "colleague")
    assert (clone / "data/external/history.csv").read_bytes() == history.read_bytes()  # from the remote, not git
    assert UP_TO_DATE in dvc(clone, "status").stdout
    assert ran_stages(dvc(clone, "repro").stdout) == set()
