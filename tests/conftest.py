"""Shared fixtures: one seed, and throwaway copies of the project for end-to-end runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SEED = 20261124
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's offerflow, dvc and prefect

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


# -- real git and dvc, as a user types them --------------------------------------------------------------------


def dvc(project: Path, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1", **(env or {})}
    environment["DVC_SITE_CACHE_DIR"] = str(project.parent / "dvc-site-cache")
    result = subprocess.run([str(BIN / "dvc"), *args], cwd=project, env=environment, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([a-z_]+)'", output))


def git_init(project: Path) -> None:
    git(project, "init", "-q")
    git(project, "config", "user.email", "ci@example.com")
    git(project, "config", "user.name", "ci")


def init_repo(project: Path) -> None:
    git_init(project)
    dvc(project, "init", "-q")
    dvc(project, "config", "core.analytics", "false")
    commit(project, "init")


def commit(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "commit", "-qm", message)


def team_repository(destination: Path) -> Path:
    """A copy of the project as a team's git repository: the committed .dvc (config, plot templates) and ignores."""
    project = copy_project(destination)
    shutil.copytree(ROOT / ".dvc", project / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp", "config.local"))
    shutil.copy(ROOT / ".gitignore", project / ".gitignore")
    git_init(project)
    return project


# -- the example, run once per test session ---------------------------------------------------------------------
# Running the example end to end is most of the suite's time; the entry points' tests share these two runs and
# read them (or copy them with copy_run before changing anything).


@dataclass(frozen=True)
class ExampleRun:
    project: Path
    result: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def example_cli_run(tmp_path_factory: pytest.TempPathFactory) -> ExampleRun:
    """The example run once by `offerflow run` in a plain copy of the project."""
    project = copy_project(tmp_path_factory.mktemp("example-cli") / "project")
    result = subprocess.run([str(BIN / "offerflow"), "run", "--no-progress"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return ExampleRun(project, result)


@pytest.fixture(scope="session")
def example_repro(tmp_path_factory: pytest.TempPathFactory) -> ExampleRun:
    """The example as a team's repository, reproduced once by `dvc repro` and committed (dvc.lock, headlines)."""
    project = team_repository(tmp_path_factory.mktemp("example-repro") / "project")
    commit(project, "the example")
    result = dvc(project, "repro")
    commit(project, "the example run: dvc.lock, headline metrics, plot data")
    return ExampleRun(project, result)


def copy_run(run: ExampleRun, destination: Path) -> Path:
    """A private copy of a shared run (its git history, DVC cache and outputs) that a test may change."""
    return Path(shutil.copytree(run.project, destination, symlinks=True))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop Prefect's temporary server while pytest's streams are open: at interpreter exit its goodbye line
    went to a closed capture stream and printed a "Logging error" traceback after every run."""
    import sys

    server = sys.modules.get("prefect.server.api.server")
    if server is not None:
        for instance in list(server.SubprocessASGIServer._instances.values()):
            instance.stop()
