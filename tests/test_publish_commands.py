"""`offerflow runs | show | rollback` against a real SQLite project, through dispatch on a parsed command line."""

from __future__ import annotations

import argparse
import io
import json

import pandas as pd
import pytest

from offerflow.config import load_params
from offerflow.catalog import Catalog
from offerflow.publish import open_store, resolve_target
from offerflow.stages import run_publish
from offerflow.publish.commands import (
    add_commands, dispatch, label_segments, offer_summary, read_segment_labels, resolve_run_id, segment_summary,
)
from offerflow.publish.lineage import StoreError
from test_publish_support import ARMS, COST, exact_hamilton, make_project, run_record, sqlite_target, synthetic_assignments, write_plan


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="offerflow")
    add_commands(root.add_subparsers(dest="command", required=True))
    return root


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = dispatch(parser().parse_args(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Two publications of the example plan (seeds 11 and 12); the second is current."""
    params = make_project(tmp_path_factory.mktemp("cmd") / "p")
    layout = Catalog(params)
    plan = write_plan(params, layout)
    first = run_publish(params)
    first_csv = pd.read_csv(layout.assignments)
    second = run_publish(load_params(params.root / "params.yaml", overrides={"publish.seed": 12}))
    return params, plan, first, first_csv, second


def test_runs_lists_newest_first_with_the_current_marker(published):
    params, _, first, _, second = published
    code, out, err = run(["runs", "--params", str(params.root / "params.yaml"), "--json"])
    assert code == 0 and err == ""
    listed = json.loads(out)
    assert listed["target"] == "sqlite:///data/published/offerflow.sqlite"
    assert [(r["run_id"], r["is_current"], r["row_count"]) for r in listed["runs"]] == [
        (second["run_id"], True, 5000), (first["run_id"], False, 5000)]
    assert listed["runs"][1]["objective"] == pytest.approx(first["objective"])
    assert listed["runs"][1]["expected_cost"] == pytest.approx(first["expected_cost"])

    code, out, _ = run(["runs", "--params", str(params.root / "params.yaml"), "--limit", "1"])
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[2].startswith(f"* {second['run_id']}")
    assert "5,000" in lines[2] and f"{first['objective']:,.2f}" in lines[2]


def test_show_gives_lineage_and_summaries_that_match_the_plan(published):
    params, plan, first, first_csv, _ = published
    code, out, _ = run(["show", first["run_id"][:6], "--params", str(params.root / "params.yaml"), "--json"])
    assert code == 0
    shown = json.loads(out)
    assert shown["run"]["run_id"] == first["run_id"] and shown["run"]["is_current"] is False
    assert shown["run"]["input_hashes"]["segment_plan"]["path"] == "data/processed/segment_plan.csv"
    assert [e["kind"] for e in shown["events"]] == ["publish"]
    offers = {o["offer"]: o for o in shown["offers"]}
    for arm in ARMS:
        chosen = first_csv[first_csv["offer"] == arm]
        assert offers[arm]["customers"] == len(chosen) == first["offer_counts"][arm]
        assert offers[arm]["share"] == pytest.approx(len(chosen) / 5000)
        assert offers[arm]["expected_conversions"] == pytest.approx(chosen["predicted_probability"].sum(), rel=1e-9)
        assert offers[arm]["expected_cost"] == pytest.approx(COST[arm] * chosen["predicted_probability"].sum(), rel=1e-9)
    for segment in shown["segments"]:
        rows = plan[plan["segment_id"] == segment["segment_id"]]
        expected = exact_hamilton(int(rows["n_customers"].iloc[0]), rows["share"].tolist())
        assert [segment[arm] for arm in ARMS] == expected and segment["customers"] == sum(expected)
        assert segment["segment"] == f"{rows['age_cat'].iloc[0]} / {rows['freq_cat'].iloc[0]}"  # the plan's own columns
    assert shown["segment_labels_note"] is None and len(shown["segments"]) == 16

    code, out, _ = run(["show", first["run_id"], "--params", str(params.root / "params.yaml")])
    assert code == 0
    assert f"run {first['run_id']}\n" in out and "per offer:" in out and "per segment:" in out
    assert "data/external/customers.csv  md5 " in out
    segment_lines = out.split("per segment:\n", 1)[1].splitlines()
    assert segment_lines[0].split()[:3] == ["segment_id", "segment", "customers"]
    assert segment_lines[7].split()[:5] == ["7", "age20~34", "/", "freq2", "150"]  # segment 7 of the true table, 150 customers


def test_show_says_when_segment_labels_may_not_be_the_runs(published):
    params, _, first, _, _ = published
    customers = params.path(params.data.customers)
    original = customers.read_bytes()
    try:
        customers.write_bytes(original + b"5001,age~19,freq0\n")  # one more customer: same segments, other file
        code, out, _ = run(["show", first["run_id"], "--params", str(params.root / "params.yaml")])
        assert code == 0
        assert "per segment (segment labels come from the current data/external/customers.csv, changed since this run):" in out
        assert "age20~34 / freq2" in out
        frame = pd.read_csv(customers).drop(columns=["freq_cat"])  # a segment column gone: no labels, ids still shown
        frame.to_csv(customers, index=False)
        code, out, _ = run(["show", first["run_id"], "--params", str(params.root / "params.yaml"), "--json"])
        shown = json.loads(out)
        assert code == 0 and "segment" not in shown["segments"][0] and len(shown["segments"]) == 16
        assert shown["segment_labels_note"] == (
            "segment labels unavailable: data/external/customers.csv has no column 'freq_cat'; segments are shown by id")
    finally:
        customers.write_bytes(original)
    labels, note = read_segment_labels(params, {"input_hashes": {}})
    assert note is None and labels[16] == "age50~ / freq3~"


def test_rollback_makes_the_earlier_run_current_and_records_it(published):
    params, _, first, first_csv, second = published
    params_file = str(params.root / "params.yaml")
    code, out, _ = run(["rollback", first["run_id"], "--params", params_file])
    assert code == 0 and f"(was {second['run_id']})" in out
    with open_store(resolve_target(params)) as store:
        assert store.current_run_id() == first["run_id"]
        view = store.read_current_view()
        last = store.events()[-1]
    assert (last["kind"], last["run_id"], last["previous_run_id"]) == ("rollback", first["run_id"], second["run_id"])
    joined = view.merge(first_csv.astype({"customer_id": str}), on="customer_id")
    assert len(view) == len(joined) == 5000 and (joined["offer_x"] == joined["offer_y"]).all()

    code, out, _ = run(["rollback", first["run_id"], "--params", params_file])
    assert code == 0 and "already the current publication" in out
    with open_store(resolve_target(params)) as store:
        assert len(store.events()) == 3  # publish, publish, rollback: the no-op wrote nothing
    run(["rollback", second["run_id"], "--params", params_file])  # leave the fixture as it was


def test_unknown_run_and_empty_target_are_clear(published, tmp_path):
    params = published[0]
    code, out, err = run(["show", "ffffffff", "--params", str(params.root / "params.yaml")])
    assert code == 1 and out == ""
    assert "no run 'ffffffff' in sqlite:///data/published/offerflow.sqlite" in err
    code, _, err = run(["rollback", "abc", "--params", str(params.root / "params.yaml")])
    assert code == 1 and "no run 'abc'" in err

    fresh = make_project(tmp_path / "fresh")
    code, out, _ = run(["runs", "--params", str(fresh.root / "params.yaml")])
    assert code == 0 and out.strip() == "no publications in sqlite:///data/published/offerflow.sqlite"
    assert not fresh.path(fresh.publish.sqlite_path).exists()  # looking created nothing
    code, _, err = run(["show", "abcd", "--params", str(fresh.root / "params.yaml")])
    assert code == 1 and "no publications in" in err


def test_run_id_prefixes_must_be_unique_and_long_enough(tmp_path):
    frame = synthetic_assignments(10)
    with open_store(sqlite_target(tmp_path / "x.sqlite")) as store:
        for run_id in ("abcd1111", "abcd2222"):
            store.publish(run_record(run_id), frame)
        assert resolve_run_id(store, "abcd1") == "abcd1111"
        with pytest.raises(StoreError, match=r"prefix 'abcd' is ambiguous: \['abcd1111', 'abcd2222'\]"):
            resolve_run_id(store, "abcd")
        with pytest.raises(StoreError, match="no run 'abc'"):
            resolve_run_id(store, "abc")  # shorter than 4 characters: never a prefix match


def test_summaries_by_hand():
    cells = pd.DataFrame({"segment_id": [1, 1, 2], "offer": ["dm1", "dm2", "dm2"], "customers": [3, 1, 4],
                          "expected_conversions": [0.3, 0.2, 1.0], "expected_cost": [0.0, 2.0, 10.0]})
    offers = offer_summary(cells)
    assert offers.to_dict("list") == {"offer": ["dm1", "dm2"], "customers": [3, 5], "share": [0.375, 0.625],
                                      "expected_conversions": [0.3, 1.2], "expected_cost": [0.0, 12.0]}
    segments = segment_summary(cells)
    named = label_segments(segments, pd.Series({1: "age~19 / freq0"}))
    assert named["segment"].tolist() == ["age~19 / freq0", "?"] and list(named.columns[:2]) == ["segment_id", "segment"]
    assert label_segments(segments, None) is segments
    assert segments.to_dict("list") == {"segment_id": [1, 2], "customers": [4, 4], "dm1": [3, 0], "dm2": [1, 4],
                                        "expected_conversions": [pytest.approx(0.5), 1.0], "expected_cost": [2.0, 10.0]}
