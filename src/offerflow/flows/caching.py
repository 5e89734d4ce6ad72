"""Prefect cache keys from the declaration: the stage's input file hashes, its params keys, its own code.

Hashing files (not DataFrames) keeps keys cheap. The key does not depend on the stage's outputs (they
do not exist yet when a first run computes it); the flow instead refreshes the cache of any stage
whose outputs are missing or were not made from these params and inputs (its stamp), so a cache hit never
skips a stage whose files someone deleted or a later run overwrote. Only the
code a stage runs enters its key, so editing the optimizer reruns optimize and what follows, not train.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy

from offerflow.catalog import Catalog
from offerflow.config import load_params
from offerflow.provenance import content_md5

PACKAGE = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=64)
def code_version(entries: tuple[str, ...]) -> str:
    """Hash of the offerflow modules/packages a stage runs (paths relative to the package)."""
    digest = hashlib.sha256()
    for entry in sorted(entries):
        digest.update(f"{entry}:{content_md5(PACKAGE / entry)}|".encode())
    return digest.hexdigest()


def stage_cache_key(stage_name: str, params_file: str, overrides: dict[str, Any] | None) -> str | None:
    from offerflow.pipeline import stage_named

    params = load_params(params_file, overrides=overrides, check_files=False)
    stage, catalog = stage_named(stage_name), Catalog(params)
    code = code_version(tuple(stage.code_for(params)))
    digest = hashlib.sha256(f"{stage.name}|{code}|{params.params_hash(*stage.params_for(params))}".encode())
    for name in stage.inputs_for(params):
        md5 = content_md5(catalog.path(name))
        if md5 is None:
            return None
        digest.update(f"|{catalog.relative(name)}:{md5}".encode())
    return f"offerflow-{stage.name}-{digest.hexdigest()}"


class StageInputs(CachePolicy):
    """Cache policy for a stage task called as task(stage, params_file, overrides)."""

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        return stage_cache_key(inputs["stage"], inputs["params_file"], inputs.get("overrides"))
