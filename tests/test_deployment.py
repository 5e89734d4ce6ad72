"""A real local Prefect server: serve the scheduled deployment, trigger a run through the API, see it publish."""

from __future__ import annotations

import os
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


@pytest.mark.slow
def test_served_deployment_runs_through_the_api_and_publishes(project, tmp_path, prefect_server):
    env = prefect_server
    logs = tmp_path / "logs"
    logs.mkdir()
    served = subprocess.Popen(
        [str(BIN / "offerflow"), "serve", "--params", str(project / "params.yaml")],
        cwd=project, env=env, stdout=open(logs / "serve.log", "w"), stderr=subprocess.STDOUT,
    )
    try:

        def deployment_registered() -> bool:
            inspect = subprocess.run(
                [str(BIN / "prefect"), "deployment", "inspect", "offer-allocation/weekly"],
                env=env, capture_output=True, text=True,
            )
            return inspect.returncode == 0 and "0 6 * * 1" in inspect.stdout and "Europe/Berlin" in inspect.stdout

        wait_until(deployment_registered, 120, "the served deployment with its cron schedule")
        run = subprocess.run(
            [str(BIN / "prefect"), "deployment", "run", "offer-allocation/weekly", "--watch", "--watch-timeout", "400"],
            env=env, capture_output=True, text=True, timeout=450,
        )
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{(logs / 'serve.log').read_text()[-3000:]}"
        assert "Completed" in run.stdout + run.stderr
        assert (project / "data/published/assignments.csv").exists()
        assert (project / "reports/publish_metrics.json").exists()
    finally:
        stop(served)
    # the served deployment publishes exactly what `offerflow run` publishes for the same params
    from conftest import copy_project
    from offerflow.io import file_sha256

    by_cli = copy_project(tmp_path / "cli")
    result = subprocess.run([str(BIN / "offerflow"), "run", "--no-progress"], cwd=by_cli, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for relative in ("data/published/assignments.csv", "reports/publish_metrics.json", "data/processed/segment_plan.csv"):
        assert file_sha256(project / relative) == file_sha256(by_cli / relative), relative
