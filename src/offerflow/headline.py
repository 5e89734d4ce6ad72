"""Headline metrics: the dozen numbers per stage a person compares across runs and experiments.

Stages write detailed JSON reports (every candidate learner's scores, every constraint's price, every
baseline's confidence interval). Declared as DVC metrics they made `dvc metrics show` list about 300 keys,
so the pipeline declaration names, for each stage, the few keys worth comparing and where they live in
the stage's reports. `run_stage` writes them to reports/metrics/<stage>.json after every run, from every
entry point; only these files are DVC metrics, the details are plain outputs.

A pick is "source:dotted.path": `source` is a catalog name the stage writes, the path walks the JSON.
`{a.b}` in a path is replaced by the value at a.b of the same document (the chosen learner's scores),
`*` collects that level of a mapping into a mapping (one number per offer), and a trailing `?` marks a
value that exists only under some params (a true table, a frontier): it is left out when absent.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from offerflow.io import read_json, write_json

if TYPE_CHECKING:
    from offerflow.catalog import Catalog
    from offerflow.config import Params
    from offerflow.pipeline import Stage

_MISSING = object()
_TEMPLATE = re.compile(r"\{([^{}]+)\}")


class HeadlineError(KeyError):
    """A declared headline key is not in the stage's report: the declaration and the runner disagree."""


def _walk(document: Any, parts: list[str]) -> Any:
    node = document
    for index, part in enumerate(parts):
        if part == "*":
            if not isinstance(node, dict):
                return _MISSING
            found = {key: _walk(value, parts[index + 1:]) for key, value in node.items()}
            return {key: value for key, value in found.items() if value is not _MISSING} or _MISSING
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def resolve(document: Any, path: str) -> Any:
    """The value at a dotted path (templates and wildcards expanded); _MISSING when it is not there."""
    def substitute(match: re.Match) -> str:
        value = _walk(document, match.group(1).split("."))
        return "\x00" if value is _MISSING else str(value)

    expanded = _TEMPLATE.sub(substitute, path)
    if "\x00" in expanded:
        return _MISSING
    # a key such as "t_learner/logistic" never holds a dot, so splitting after substitution is safe
    return _walk(document, expanded.split("."))


def _plain(value: Any) -> Any:
    """Numbers as DVC compares them: rounded floats; strings and booleans as they are."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value


def headline_metrics(stage: "Stage", params: "Params", catalog: "Catalog") -> dict:
    """The stage's headline, read from the reports it just wrote."""
    documents: dict[str, Any] = {}
    headline: dict[str, Any] = {}
    for key, pick in stage.headline:
        optional = pick.endswith("?")
        source, _, path = pick.rstrip("?").partition(":")
        if source not in documents:
            file = catalog.path(source)
            documents[source] = read_json(file) if file.is_file() else {}
        value = resolve(documents[source], path)
        if value is _MISSING or value is None:
            if optional:
                continue
            raise HeadlineError(
                f"stage {stage.name!r}: headline {key!r} reads {path!r} of {catalog.relative(source)}, which has no such value"
            )
        headline[key] = _plain(value)
    return headline


def write_headline(stage: "Stage", params: "Params", catalog: "Catalog") -> dict | None:
    """Write reports/metrics/<stage>.json (stages without a headline write nothing)."""
    from offerflow.catalog import headline_name

    if not stage.headline:
        return None
    headline = headline_metrics(stage, params, catalog)
    write_json(headline, catalog.path(headline_name(stage.name)))
    return headline
