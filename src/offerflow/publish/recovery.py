"""The files view (assignments.csv, publish_metrics.json) follows the database, even across a kill.

Publishing writes the new files next to their final names first (`.<name>.pending`), records them in
a journal, commits the target, then renames them into place and drops the journal. A process killed
after the commit but before the renames leaves the journal: the next offerflow command finishes the
renames when the target's current run is the journal's run (the commit happened), or discards the
pending files when it is not. Temporary files of killed atomic writes are removed at the same time.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

from offerflow.catalog import Catalog
from offerflow.config import Params

log = logging.getLogger("offerflow.publish")
JOURNAL = ".publish_journal.json"
PENDING = ".pending"


def journal_name(scenario: str | None = None) -> str:
    """The journal of the coupon plan's publication, or of a scenario's (discounts, journey)."""
    return JOURNAL if scenario is None else f".{scenario}{JOURNAL}"


def journal_path(catalog: Catalog, journal: str = JOURNAL) -> Path:
    return catalog.path("assignments").parent / journal


def pending_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{PENDING}")


def begin(catalog: Catalog, run_id: str, files: dict[Path, Callable[[Path], None]], journal: str = JOURNAL) -> None:
    """Write each file beside its final name, then the journal naming them (fsynced before the commit)."""
    for final, writer in files.items():
        final.parent.mkdir(parents=True, exist_ok=True)
        writer(pending_path(final))
    journal = journal_path(catalog, journal)
    journal.parent.mkdir(parents=True, exist_ok=True)
    payload = {"run_id": run_id, "files": sorted(str(final.relative_to(catalog.root)) for final in files)}
    tmp = journal.with_name(journal.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, journal)


def finish(catalog: Catalog, journal: str = JOURNAL) -> None:
    """Move the pending files into place and drop the journal (after the target committed)."""
    journal = journal_path(catalog, journal)
    if not journal.is_file():
        return
    for relative in json.loads(journal.read_text())["files"]:
        final = catalog.root / relative
        if pending_path(final).exists():
            os.replace(pending_path(final), final)
    journal.unlink()


def discard(catalog: Catalog, journal: str = JOURNAL) -> None:
    """Drop pending files and the journal (the target did not commit)."""
    journal = journal_path(catalog, journal)
    if not journal.is_file():
        return
    for relative in json.loads(journal.read_text())["files"]:
        pending_path(catalog.root / relative).unlink(missing_ok=True)
    journal.unlink()


STALE_SECONDS = 600  # a temporary file this old belongs to no running write


def remove_stale_temporaries(catalog: Catalog) -> list[Path]:
    """Temporary files of atomic writes killed mid-way (`.<name>.<random>.tmp`) in the published folder."""
    import time

    folder = catalog.path("assignments").parent
    cutoff = time.time() - STALE_SECONDS
    candidates = folder.glob(".*.tmp") if folder.is_dir() else []
    removed = [path for path in candidates if path.is_file() and path.stat().st_mtime < cutoff]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def recover_publication(params: Params) -> str | None:
    """Bring the files views in line with the target after a killed publication; says what it did (or None)."""
    catalog = Catalog(params)
    actions = [action for scenario in (None, "discounts", "journey") if (action := _recover(params, catalog, scenario))]
    removed = remove_stale_temporaries(catalog)
    if removed:
        actions.append(f"removed {len(removed)} stale temporary file(s)")
    for action in actions:
        log.warning("publish recovery: %s", action)
    return "; ".join(actions) or None


def _recover(params: Params, catalog: Catalog, scenario: str | None) -> str | None:
    journal = journal_path(catalog, journal_name(scenario))
    if not journal.is_file():
        return None
    from offerflow.publish.target import open_store, resolve_target

    run_id = json.loads(journal.read_text())["run_id"]
    if scenario is None:
        target = resolve_target(params)
    else:
        from offerflow.stages.scenario_publish import scenario_target

        target = scenario_target(params, scenario)
    with open_store(target) as store:
        committed = store.exists() and store.current_run_id() == run_id
    if committed:
        finish(catalog, journal_name(scenario))
        return f"finished the files of run {run_id}, which the target had committed before a crash"
    discard(catalog, journal_name(scenario))
    return f"discarded the files of run {run_id}, which the target never committed"
