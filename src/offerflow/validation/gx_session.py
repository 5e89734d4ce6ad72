"""Great Expectations 1.x behind one small class: an ephemeral context per validate run.

Why a class: importing GX and building a context cost seconds, so one run of the validate
stage builds one session and validates every dataset through it. GX is imported lazily so
that `import offerflow.validate` (the CLI, the Prefect flow) stays fast.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from offerflow.config import ConfigError
from offerflow.validation.failures import plain
from offerflow.validation.suites import ExpectationSpec

DATA_DOCS_SITE = "offerflow"

# Keys of a GX validation result that change on every run (times, random ids) or hold
# machine-specific tracebacks: dropped so the stored result is byte-identical across runs.
VOLATILE_KEYS = frozenset(
    {"id", "run_id", "run_time", "validation_time", "ge_load_time", "validation_id", "checkpoint_id"}
)


@dataclass(frozen=True)
class GxRun:
    """GX expectation results in suite order, plus the run's result as a stable JSON document."""

    results: list[Any]
    document: dict[str, Any]


class GxSession:
    """An ephemeral GX context with one pandas data source; optionally builds HTML Data Docs."""

    def __init__(self, data_docs_dir: Path | None = None) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.data_docs_dir = data_docs_dir
        if data_docs_dir is not None:
            self.context.add_data_docs_site(
                DATA_DOCS_SITE,
                {
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(Path(data_docs_dir).resolve()),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        self._source = self.context.data_sources.add_pandas("offerflow")
        self._uses: Counter[str] = Counter()

    def run(self, name: str, frame: pd.DataFrame, specs: list[ExpectationSpec], suite_label: str) -> GxRun:
        """Validate `frame` against `specs` through a Checkpoint (which also updates Data Docs)."""
        gx = self._gx
        self._uses[name] += 1
        unique = name if self._uses[name] == 1 else f"{name}_{self._uses[name]}"
        batch = self._source.add_dataframe_asset(unique).add_batch_definition_whole_dataframe("whole_frame")
        expectations = [_to_expectation(spec, suite_label) for spec in specs]
        # Added in one go: adding one by one re-serializes the whole suite each time (slow).
        suite = self.context.suites.add(gx.ExpectationSuite(name=unique, expectations=expectations))
        order = {str(expectation.id): position for position, expectation in enumerate(suite.expectations)}
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=unique, data=batch, suite=suite)
        )
        actions = []
        if self.data_docs_dir is not None:
            actions.append(gx.checkpoint.UpdateDataDocsAction(name="update_data_docs", site_names=[DATA_DOCS_SITE]))
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(name=unique, validation_definitions=[definition], actions=actions, result_format="SUMMARY")
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frame})
        validation = next(iter(outcome.run_results.values()))

        def position_of(result: Any) -> int:
            return order.get(str(result.expectation_config.id), len(order))

        results = sorted(validation.results, key=position_of)
        return GxRun(results=results, document=stable_document(validation.to_json_dict(), order))


def _to_expectation(spec: ExpectationSpec, suite_label: str) -> Any:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    try:
        return ExpectationConfiguration(type=spec.type, kwargs=spec.kwargs, meta=spec.meta).to_domain_obj()
    except Exception as exc:  # GX raises several unrelated types for a bad type or kwargs
        raise ConfigError(f"{suite_label}: expectation {spec.type} {spec.kwargs}: {exc}") from None


def stable_document(result: dict[str, Any], order: dict[str, int]) -> dict[str, Any]:
    """A GX validation result without run times, run ids or tracebacks, results in suite order."""
    ordered = dict(result)
    ordered["results"] = sorted(
        result.get("results", []),
        key=lambda item: order.get(str(item.get("expectation_config", {}).get("id")), len(order)),
    )
    return plain(_strip(ordered))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        if "exception_info" in value:
            value = {**value, "exception_info": exception_summary(value["exception_info"])}
        return {key: _strip(item) for key, item in value.items() if key not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def exception_summary(info: Any) -> dict[str, Any]:
    """GX stores either one exception record or one per failed metric; reduce to the messages."""
    if not isinstance(info, dict):
        return {"raised_exception": False, "exception_message": None}
    records = [info] if "raised_exception" in info else [item for item in info.values() if isinstance(item, dict)]
    messages = sorted({str(r.get("exception_message")) for r in records if r.get("raised_exception")})
    return {"raised_exception": bool(messages), "exception_message": "; ".join(messages) or None}
