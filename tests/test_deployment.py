"""A real local Prefect server: serve the scheduled deployment, trigger a run through the API, see it publish."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """A real Prefect server on 127.0.0.1 with its own PREFECT_HOME; yields the env to talk to it."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    log = home / "server.log"
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: healthy(api), 120, f"the Prefect server on port {port} ({log})")
        yield env
    finally:
        stop(server)


def offerflow(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "offerflow"), *args], cwd=project, env=env, capture_output=True, text=True)


def test_prefect_yaml_is_written_from_params_yaml(project):
    """Schedules live in params.yaml only: prefect.yaml is generated from it and checked against it."""
    import yaml

    from conftest import ROOT, set_params

    assert offerflow(ROOT, "prefect-yaml", "--check").returncode == 0  # the repository's file is current
    shutil.copy(ROOT / "prefect.yaml", project / "prefect.yaml")
    set_params(project, orchestration__schedule={"cron": "15 4 * * 2", "timezone": "America/New_York"})
    stale = offerflow(project, "prefect-yaml", "--check")
    assert stale.returncode == 2 and "orchestration.schedule" in stale.stderr and "offerflow prefect-yaml" in stale.stderr
    assert offerflow(project, "prefect-yaml").returncode == 0
    (offers,) = yaml.safe_load((project / "prefect.yaml").read_text())["deployments"]
    assert offers["schedules"] == [{"cron": "15 4 * * 2", "timezone": "America/New_York"}]
    assert offers["parameters"] == {"params_file": "params.yaml"}  # no overrides: params.yaml decides every run

    set_params(project, discounts__enabled=True)
    assert offerflow(project, "prefect-yaml", "--check").returncode == 2
    assert offerflow(project, "prefect-yaml").returncode == 0
    deployments = yaml.safe_load((project / "prefect.yaml").read_text())["deployments"]
    assert [d["entrypoint"] for d in deployments] == [
        "flows/offer_allocation.py:offer_allocation", "flows/discount_policy.py:discount_policy"]
    assert deployments[1]["schedules"] == [{"cron": "0 7 1 * *", "timezone": "Europe/Berlin"}]
    for deployment in deployments:
        assert (ROOT / deployment["entrypoint"].split(":")[0]).is_file()


def test_serve_without_a_reachable_server_fails_within_seconds_with_a_hint(project):
    for api in (None, f"http://127.0.0.1:{free_port()}/api"):  # none configured; configured but nobody listens
        env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
        if api:
            env["PREFECT_API_URL"] = api
        started = time.monotonic()
        result = offerflow(project, "serve", env=env)
        assert time.monotonic() - started < 20
        assert result.returncode == 1, result.stderr
        assert "prefect server start" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) <= 3


COMPARED = ("data/published/assignments.csv", "reports/publish_metrics.json", "data/processed/segment_plan.csv")


def deployment_run(env: dict, name: str = "offer-allocation/weekly") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", name, "--watch", "--watch-timeout", "400"],
        env=env, capture_output=True, text=True, timeout=450,
    )


@pytest.mark.slow
def test_served_deployment_follows_params_yaml_and_keeps_dvc_in_step(project, tmp_path, prefect_server, example_cli_run):
    """Runs triggered through the API read params.yaml when they start and `dvc commit` what they wrote."""
    import json

    from conftest import dvc, init_repo, set_params
    from offerflow.io import file_sha256

    env = prefect_server
    init_repo(project)
    logs = tmp_path / "logs"
    logs.mkdir()
    served = subprocess.Popen(
        [str(BIN / "offerflow"), "serve", "--params", str(project / "params.yaml")],
        cwd=project, env=env, stdout=open(logs / "serve.log", "w"), stderr=subprocess.STDOUT,
    )
    published = project / "reports/publish_metrics.json"
    try:

        def deployment_registered() -> bool:
            inspect = subprocess.run(
                [str(BIN / "prefect"), "deployment", "inspect", "offer-allocation/weekly"],
                env=env, capture_output=True, text=True,
            )
            return inspect.returncode == 0 and "0 6 * * 1" in inspect.stdout and "Europe/Berlin" in inspect.stdout

        wait_until(deployment_registered, 120, "the served deployment with its cron schedule")
        first = deployment_run(env)
        assert first.returncode == 0, f"{first.stdout}\n{first.stderr}\n{(logs / 'serve.log').read_text()[-3000:]}"
        assert "Completed" in first.stdout + first.stderr
        before = json.loads(published.read_text())
        assert before["budget"] == 10_000 and "up to date" in dvc(project, "status").stdout
        first_files = {relative: file_sha256(project / relative) for relative in COMPARED}

        # a data scientist edits params.yaml; the served deployment is not restarted
        set_params(project, optimize__budget=7000)
        second = deployment_run(env)
        assert second.returncode == 0, f"{second.stdout}\n{second.stderr}\n{(logs / 'serve.log').read_text()[-3000:]}"
        after = json.loads(published.read_text())
        assert after["budget"] == 7000 and after["assigned_expected_cost"] <= 7000 + 1e-6
        assert after["run_id"] != before["run_id"] and after["offer_counts"] != before["offer_counts"]
        assert after["expected_incremental_conversions"] < before["expected_incremental_conversions"]
        assert "up to date" in dvc(project, "status").stdout  # the scheduled run recorded its outputs in dvc.lock
    finally:
        stop(served)
    # the first served run published exactly what `offerflow run` publishes for the same params.yaml (the second
    # differs from a fresh `offerflow run` by its run id only: the gate also weighed the first run, the incumbent)
    by_cli = example_cli_run.project  # the session's `offerflow run` of the example (conftest)
    assert {relative: file_sha256(by_cli / relative) for relative in COMPARED} == first_files


def test_prefect_deploy_registers_the_schedule_params_yaml_names(project, prefect_server):
    """`prefect deploy --all` with the generated prefect.yaml: the cron and the params file come from params.yaml."""
    import json

    from conftest import ROOT, set_params

    env = {**prefect_server, "OFFERFLOW_PROJECT_DIR": str(project)}
    shutil.copytree(ROOT / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    set_params(project, orchestration__schedule={"cron": "30 5 * * 3", "timezone": "Europe/Paris"},
               orchestration__deployment_name="midweek")
    assert offerflow(project, "prefect-yaml").returncode == 0
    prefect = str(BIN / "prefect")
    subprocess.run([prefect, "work-pool", "create", "offerflow-process", "--type", "process"], env=env, capture_output=True)
    deploy = subprocess.run([prefect, "--no-prompt", "deploy", "--all"], cwd=project, env=env, capture_output=True, text=True,
                            timeout=300)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    inspect = subprocess.run([prefect, "deployment", "inspect", "offer-allocation/midweek", "--output", "json"],
                             env=env, capture_output=True, text=True)
    assert inspect.returncode == 0, inspect.stdout + inspect.stderr
    deployment = json.loads(inspect.stdout)
    assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in deployment["schedules"]] == [("30 5 * * 3", "Europe/Paris")]
    assert deployment["parameters"] == {"params_file": "params.yaml"}
    assert deployment["work_pool_name"] == "offerflow-process"
