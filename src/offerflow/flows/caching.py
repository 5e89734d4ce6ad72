"""Prefect cache keys from what a stage actually reads: input file hashes, its params keys, its code.

Hashing files (not DataFrames) keeps keys cheap. The key does not depend on the stage's outputs (they
do not exist yet when a first run computes it); the flow instead refreshes the cache of any stage
whose outputs are missing, so a cache hit never skips a stage whose files someone deleted.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy

from offerflow.config import load_params
from offerflow.io import file_sha256


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the offerflow package source: a code change invalidates every cached stage."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def stage_cache_key(stage: str, params_file: str, overrides: dict[str, Any] | None) -> str | None:
    from offerflow.stages import STAGE_PARAMS, layout_for, stage_deps

    params = load_params(params_file, overrides=overrides, check_files=False)
    layout = layout_for(params)
    digest = hashlib.sha256(f"{stage}|{code_version()}|{params.params_hash(*STAGE_PARAMS[stage])}".encode())
    for path in stage_deps(stage, params, layout):
        if not path.exists():
            return None
        digest.update(f"|{path.relative_to(params.root) if path.is_relative_to(params.root) else path}:".encode())
        digest.update(file_sha256(path).encode())
    return f"offerflow-{stage}-{digest.hexdigest()}"


class StageInputs(CachePolicy):
    """Cache policy for a stage task called as task(stage, params_file, overrides)."""

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        return stage_cache_key(inputs["stage"], inputs["params_file"], inputs.get("overrides"))
