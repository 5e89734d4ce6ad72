"""Credentials from a Prefect Secret block (real ephemeral Prefect API; slow only when it is the first to start it)."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest

from offerflow.catalog import Catalog
from offerflow.io import read_json
from offerflow.publish import PUBLISHED, PublishTargetError
from offerflow.stages import run_publish
from test_publish_support import make_project, pg_count, throwaway_database, write_plan

PASSWORD = "bl0ck-pa55word"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture
def secret_block(pg_url) -> Iterator[str]:
    from prefect.blocks.system import Secret

    name = f"offerflow-test-{uuid.uuid4().hex[:8]}"
    Secret(value=pg_url.replace("postgres@", f"postgres:{PASSWORD}@")).save(name)
    yield name
    Secret.delete(name)


def test_publish_reads_the_url_from_a_prefect_secret_block(secret_block, pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("OFFERFLOW_DB_URL", "postgresql://nobody@127.0.0.1:1/not_this_one")  # the block wins
    params = make_project(tmp_path / "p", **{"publish.target": "postgresql", "publish.secret_block": secret_block})
    layout = Catalog(params)
    write_plan(params, layout)
    result = run_publish(params)
    assert result["status"] == PUBLISHED
    assert pg_count(pg_url, "SELECT count(*) FROM assignments") == 5000
    metrics = read_json(layout.publish_metrics)
    assert metrics["target"].startswith("postgresql+psycopg://postgres:***@127.0.0.1:5432/")
    assert PASSWORD not in layout.publish_metrics.read_text()


def test_a_missing_secret_block_is_named(tmp_path):
    params = make_project(tmp_path / "p", **{"publish.target": "postgresql", "publish.secret_block": "no-such-block-xyz"})
    layout = Catalog(params)
    write_plan(params, layout)
    with pytest.raises(PublishTargetError, match=r"publish.secret_block: cannot load the Prefect Secret block 'no-such-block-xyz'"):
        run_publish(params)
    assert not layout.assignments.exists()
