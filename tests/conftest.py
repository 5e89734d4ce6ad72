"""Shared fixtures: one seed, and throwaway copies of the project for end-to-end runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SEED = 20261124
ROOT = Path(__file__).resolve().parents[1]

# Prefect runs ephemeral (no server); keep its state out of the user's home.
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def copy_project(destination: Path) -> Path:
    """A runnable copy of the project: inputs, pipeline definition and the source its dvc.yaml lists as code."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, destination / name)
    for folder in ("data/external", "expectations"):
        shutil.copytree(ROOT / folder, destination / folder)
    shutil.copytree(ROOT / "src", destination / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return destination


def discount_data_dir() -> Path:
    """The discount example's files: committed under data/external/discounts, else the shared folder beside the repo."""
    for candidate in (ROOT / "data/external/discounts", ROOT.parent / "shared/data/discounts"):
        if (candidate / "random_data.csv").is_file():
            return candidate
    pytest.fail("discount example files not found (data/external/discounts/{non_rand_discount,random_data}.csv)")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture(scope="module")
def module_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("module") / "project")


def set_params(project: Path, **dotted: object) -> None:
    """Edit params.yaml in a project copy, as a data scientist would."""
    import yaml

    path = project / "params.yaml"
    tree = yaml.safe_load(path.read_text())
    for key, value in dotted.items():
        node = tree
        *parents, leaf = key.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    path.write_text(yaml.safe_dump(tree, sort_keys=False))


def write_user_history(project: Path, seed: int = SEED, campaigns: int = 4) -> Path:
    """A campaign log as a user would bring it: customer, arm, outcome (no simulator truth), outside data/raw."""
    import pandas as pd

    from offerflow.simulation import simulate_history

    customers = pd.read_csv(project / "data/external/customers.csv")
    truth = pd.read_csv(project / "data/external/visit_probability.csv")
    history = simulate_history(customers, truth, ["dm1", "dm2", "dm3"], ["age_cat", "freq_cat"], campaigns=campaigns, seed=seed)
    path = project / "data/external/history.csv"
    history[["campaign", "customer_id", "arm", "converted"]].to_csv(path, index=False)
    return path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop Prefect's temporary server while pytest's streams are open: at interpreter exit its goodbye line
    went to a closed capture stream and printed a "Logging error" traceback after every run."""
    import sys

    server = sys.modules.get("prefect.server.api.server")
    if server is not None:
        for instance in list(server.SubprocessASGIServer._instances.values()):
            instance.stop()
