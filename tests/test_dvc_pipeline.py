"""dvc.yaml agrees with the code, and `dvc repro` runs, is a no-op when nothing changed, and reruns
only optimize, allocate and publish when only the budget changes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, set_params
from offerflow.config import load_params
from offerflow.stages import STAGE_PARAMS, STAGES, layout_for, stage_deps, stage_outs

BIN = Path(sys.executable).parent


def test_dvc_yaml_lists_the_keys_deps_and_outs_each_stage_uses():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = load_params(ROOT / "params.yaml", check_files=False)
    layout = layout_for(params)
    assert list(pipeline) == list(STAGES)  # (top-level plots are not stages)
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())

    def resolve(entry: str) -> str:
        def lookup(match: re.Match) -> str:
            node = tree
            for part in match.group(1).split("."):
                node = node[part]
            return str(node)

        return re.sub(r"\$\{([^}]+)\}", lookup, entry)

    def names(entries) -> set[str]:
        return {resolve(next(iter(e)) if isinstance(e, dict) else e) for e in entries}

    for stage, spec in pipeline.items():
        assert spec["cmd"] == f"offerflow {stage}"
        assert tuple(spec["params"]) == STAGE_PARAMS[stage], stage
        declared = names(spec["deps"])
        for dep in stage_deps(stage, params, layout):
            relative = str(dep.relative_to(params.root))
            assert relative in declared or relative.split("/")[0] in declared, (stage, relative)
        outs = names(spec.get("outs", [])) | names(spec.get("metrics", []))
        assert {str(p.relative_to(params.root)) for p in stage_outs(stage, params, layout)} <= outs, stage


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    env["DVC_SITE_CACHE_DIR"] = str(project.parent / "dvc-site-cache")
    result = subprocess.run([str(BIN / "dvc"), *args], cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([a-z_]+)'", output))


def init_repo(project: Path) -> None:
    for command in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.com"],
                    ["git", "config", "user.name", "ci"]):
        subprocess.run(command, cwd=project, check=True)
    dvc(project, "init", "-q")
    dvc(project, "config", "core.analytics", "false")
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=project, check=True)


@pytest.mark.slow
def test_dvc_repro_runs_everything_then_nothing_then_only_what_the_budget_affects(project):
    init_repo(project)
    first = dvc(project, "repro")
    assert ran_stages(first.stdout) == set(STAGES)
    assignments = project / "data/published/assignments.csv"
    assert assignments.exists()

    second = dvc(project, "repro")
    assert ran_stages(second.stdout) == set()
    assert "up to date" in dvc(project, "status").stdout

    set_params(project, optimize__budget=8000)
    third = dvc(project, "repro")
    assert ran_stages(third.stdout) == {"optimize", "allocate", "publish"}
    assert "up to date" in dvc(project, "status").stdout
