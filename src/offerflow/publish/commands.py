"""`offerflow runs | show RUN_ID | rollback RUN_ID`: inspect publications and make an earlier one current.

The CLI registers these with `add_commands(subparsers)` and hands the parsed arguments to
`dispatch(args)`. They read the target configured in params.yaml (credentials from the same
environment variable or Prefect Secret block as publishing). Run ids may be shortened to any
unique prefix of at least four characters, like git revisions.

The database stores segment ids only; `show` names each segment by its category values ("age20~34 / freq2")
from the segment catalog of the customers file (numbered like the true table, exactly as the stages number
them), and says so when that file changed since the run, or cannot be read (then only ids are shown).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from offerflow.config import load_params
from offerflow.publish.lineage import StoreError
from offerflow.publish.store import ALREADY_CURRENT
from offerflow.publish.target import PublishTargetError, open_store, resolve_target

COMMANDS = ("runs", "show", "rollback")
MIN_PREFIX = 4
EXIT_OK, EXIT_ERROR = 0, 1
log = logging.getLogger("offerflow.publish")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", type=Path, help="params file (default: params.yaml)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a params.yaml key, e.g. --set publish.target=postgresql (repeatable)",
    )


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register runs, show and rollback on the CLI's subparsers (dest="command")."""
    runs = subparsers.add_parser("runs", help="list recent publications (status, objective, cost, rows, current)",
                                 description="List recent publications in the publish target, newest first.")
    _common(runs)
    runs.add_argument("--limit", type=int, default=20, help="how many runs to list (default 20)")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = subparsers.add_parser("show", help="lineage and per-offer / per-segment summary of one publication",
                                 description="Show a publication's lineage, events and per-offer / per-segment summary.")
    _common(show)
    show.add_argument("run_id", metavar="RUN_ID", help="run id (or a unique prefix of at least 4 characters)")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    rollback = subparsers.add_parser("rollback", help="make an earlier complete publication current again",
                                     description="Point the current publication at RUN_ID again; recorded as a rollback event.")
    _common(rollback)
    rollback.add_argument("run_id", metavar="RUN_ID", help="run id (or a unique prefix of at least 4 characters)")


def resolve_run_id(store: Any, text: str) -> str:
    """The full run id for `text`: an exact id, or a unique prefix of at least MIN_PREFIX characters."""
    ids = store.run_ids()
    if text in ids:
        return text
    matches = [run_id for run_id in ids if run_id.startswith(text)] if len(text) >= MIN_PREFIX else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise StoreError(f"run id prefix {text!r} is ambiguous: {matches[:5]}")
    raise StoreError(f"no run {text!r} in {store.target.description} (`offerflow runs` lists them)")


def offer_summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Per offer: customers, share of all customers, expected conversions and expected cost."""
    by_offer = cells.groupby("offer", sort=True)[["customers", "expected_conversions", "expected_cost"]].sum()
    total = by_offer["customers"].sum()
    by_offer.insert(1, "share", by_offer["customers"] / total if total else 0.0)
    return by_offer.reset_index()


def segment_summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Per segment: customers, customers per offer, expected conversions and expected cost."""
    counts = cells.pivot_table(index="segment_id", columns="offer", values="customers", aggfunc="sum", fill_value=0)
    counts.columns = [str(column) for column in counts.columns]
    totals = cells.groupby("segment_id")[["customers", "expected_conversions", "expected_cost"]].sum()
    return totals[["customers"]].join(counts).join(totals[["expected_conversions", "expected_cost"]]).reset_index()


def label_segments(segments: pd.DataFrame, labels: pd.Series | None) -> pd.DataFrame:
    """The per-segment summary with a `segment` column ("age20~34 / freq2") after the id; "?" for an id the
    catalog does not know (the customers file changed since the run). No labels: the summary as it is."""
    if labels is None:
        return segments
    named = segments.copy()
    named.insert(1, "segment", named["segment_id"].map(labels).fillna("?").astype(str))
    return named


def read_segment_labels(params: Any, record: dict[str, Any]) -> tuple[pd.Series | None, str | None]:
    """Segment id -> label from the customers file (and the true table's numbering), plus a note for the reader
    when the labels may not be the run's: a file changed since the run (md5 differs), or it cannot be read."""
    from offerflow.catalog import Catalog
    from offerflow.errors import InputDataError
    from offerflow.io import file_md5
    from offerflow.optimize.study_grids import segment_labels
    from offerflow.stages.inputs import customers_with_segments

    catalog = Catalog(params)
    try:
        _, segments = customers_with_segments(catalog)
        labels = segment_labels(segments, params.data.segment_columns)
    except KeyError as error:  # a segment column the customers file does not have (any more)
        return None, f"segment labels unavailable: {catalog.relative('customers')} has no column {error}; segments are shown by id"
    except (InputDataError, OSError, ValueError) as error:
        return None, f"segment labels unavailable ({error}); segments are shown by id"
    changed = []
    for role in ("customers", "true_probabilities"):
        recorded, path = (record.get("input_hashes") or {}).get(role), catalog.optional(role)
        current = file_md5(path) if path is not None and path.is_file() else None
        if isinstance(recorded, dict) and recorded.get("md5") != current:
            changed.append(catalog.relative(role) or role)
    if changed:
        return labels, f"segment labels come from the current {' and '.join(changed)}, changed since this run"
    return labels, None


def _number(value: Any, decimals: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and pd.isna(value)) else f"{value:,.{decimals}f}"


def print_runs(records: list[dict[str, Any]], description: str, out: TextIO) -> None:
    print(f"publications in {description}, newest first (* = current)", file=out)
    print(f"  {'RUN ID':<16}  {'CREATED (UTC)':<19}  {'STATUS':<9} {'SOURCE':<13} "
          f"{'OBJECTIVE':>12} {'EXPECTED COST':>14} {'ROWS':>11}", file=out)
    for r in records:
        marker = "*" if r["is_current"] else " "
        created = (r["created_at"] or "")[:19].replace("T", " ")
        print(f"{marker} {r['run_id']:<16}  {created:<19}  {r['status']:<9} {str(r.get('source') or '-'):<13} "
              f"{_number(r['objective']):>12} {_number(r['expected_cost']):>14} {r['row_count']:>11,}", file=out)


def _frame_text(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if column == "share":
            shown[column] = shown[column].map(lambda v: f"{v:.1%}")
        elif pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(_number)
    if "segment" in shown.columns:  # names read left-aligned, like text
        width = max([len("segment"), *shown["segment"].map(len)])
        shown["segment"] = shown["segment"].map(lambda v: v.ljust(width))
        shown = shown.rename(columns={"segment": "segment".ljust(width)})
    return "  " + shown.to_string(index=False).replace("\n", "\n  ")


def print_show(
    record: dict[str, Any], events: list[dict], offers: pd.DataFrame, segments: pd.DataFrame, out: TextIO,
    note: str | None = None,
) -> None:
    print(f"run {record['run_id']}{' (current)' if record['is_current'] else ''}", file=out)
    fields = [("created at", record["created_at"]), ("status", record["status"]), ("source", record.get("source")),
              ("rows", f"{record['row_count']:,}"), ("objective", _number(record["objective"])),
              ("expected cost", _number(record["expected_cost"])), ("solver status", record["solver_status"]),
              ("params hash", record["params_hash"]), ("model md5", record["model_md5"]), ("git revision", record["git_revision"])]
    for name, value in fields:
        print(f"  {name:<14} {value if value is not None else '-'}", file=out)
    settings = record.get("settings") or {}
    if settings:
        print("  settings:", file=out)
        for key in sorted(settings):
            value = settings[key]
            shown = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
            print(f"    {key:<22} {shown if shown is not None else '-'}", file=out)
    print("  inputs (as in dvc.lock):", file=out)
    for role, entry in sorted(record["input_hashes"].items()):
        if isinstance(entry, dict):
            print(f"    {role:<24} {entry['path']}  md5 {entry['md5']}  {entry['size']:,} bytes", file=out)
        else:
            print(f"    {role:<24} {entry if entry else '(not used)'}", file=out)
    print("events:", file=out)
    for e in events:
        print(f"  {e['recorded_at']}  {e['kind']:<9} previous current run: {e['previous_run_id'] or '-'}", file=out)
    print("per offer:", file=out)
    print(_frame_text(offers), file=out)
    print("per segment:" if note is None else f"per segment ({note}):", file=out)
    print(_frame_text(segments), file=out)


def _run_command(args: argparse.Namespace, out: TextIO) -> int:
    from offerflow.cli import parse_override

    from offerflow.publish.recovery import recover_publication

    params = load_params(args.params, overrides=dict(parse_override(item) for item in getattr(args, "overrides", [])))
    recover_publication(params)
    target = resolve_target(params)
    with open_store(target) as store:
        if args.command == "runs":
            records = store.runs(limit=args.limit) if store.exists() else []
            if args.json:
                print(json.dumps({"target": target.description, "runs": records}, indent=2, default=str), file=out)
            elif not records:
                print(f"no publications in {target.description}", file=out)
            else:
                print_runs(records, target.description, out)
            return EXIT_OK
        if not store.exists():
            raise StoreError(f"no publications in {target.description}")
        run_id = resolve_run_id(store, args.run_id)
        if args.command == "show":
            cells = store.offer_segment_cells(run_id)
            record, events = store.run(run_id), store.events(run_id)
            labels, note = read_segment_labels(params, record)
            offers, segments = offer_summary(cells), label_segments(segment_summary(cells), labels)
            if args.json:
                payload = {"run": record, "events": events, "offers": offers.to_dict("records"),
                           "segments": segments.to_dict("records"), "segment_labels_note": note}
                print(json.dumps(payload, indent=2, default=str), file=out)
            else:
                print_show(record, events, offers, segments, out, note)
            return EXIT_OK
        previous = store.current_run_id()
        status = store.rollback(run_id)
        if status == ALREADY_CURRENT:
            print(f"run {run_id} is already the current publication in {target.description}", file=out)
        else:
            log.info("rollback: run %s is current again in %s (was %s)", run_id, target.description, previous)
            print(f"run {run_id} is the current publication again in {target.description} (was {previous})", file=out)
        return EXIT_OK


def dispatch(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run `runs`, `show` or `rollback`; returns the exit code (1 with a message on stderr when it fails)."""
    if args.command not in COMMANDS:
        raise ValueError(f"publish commands are {COMMANDS}, got {args.command!r}")
    try:
        return _run_command(args, out or sys.stdout)
    except (StoreError, PublishTargetError) as error:
        print(f"offerflow {args.command}: {error}", file=err or sys.stderr)
        return EXIT_ERROR
