"""The coupon study's pictures: the numbers on each grid against hand counts of the example files, forced-minimum
marking on a hand-made plan, the words on the pictures, and PNG bytes that depend on the data only."""

from __future__ import annotations

import csv
import importlib
import struct
from collections import Counter
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from offerflow.figures import DPI
from offerflow.optimize import plots, study_figures
from offerflow.config import FiguresConfig
from offerflow.optimize.segment_lp import optimize_segments
from offerflow.optimize.study_grids import (
    allocation_cells, category_order, customer_count_grid, customer_plan_cells, layout_grid, layout_rows,
    offer_tick_labels, probability_cells, segment_labels,
)
from offerflow.segments import segment_catalog

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERS = ROOT / "data/external/customers.csv"
TRUTH = ROOT / "data/external/visit_probability.csv"
COLUMNS = ["age_cat", "freq_cat"]
ARMS = ["dm1", "dm2", "dm3"]
COST = {"dm1": 0.0, "dm2": 10.0, "dm3": 20.0}
AGES = ["age~19", "age20~34", "age35~49", "age50~"]
FREQS = ["freq0", "freq1", "freq2", "freq3~"]
NAMES = {"age_cat": "age group", "freq_cat": "purchase frequency (visits)"}


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The file as plain strings (the csv module), the hand count's source: no pandas on this side."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def example():
    customers, truth = pd.read_csv(CUSTOMERS), pd.read_csv(TRUTH)
    segments = segment_catalog(customers, COLUMNS, reference_table=truth)
    table = truth.merge(segments[["segment_id", "n_customers"]], on="segment_id")
    plan = optimize_segments(table, COLUMNS, ARMS, "dm1", COST, budget=10_000, min_share=0.1).plan
    return customers, truth, segments, plan


@pytest.fixture
def drawn(monkeypatch):
    """Every figure's texts and lines, read just before the real save_png writes it."""
    seen: list[dict] = []
    real = study_figures.save_png

    def save_and_read(figure, target):
        from matplotlib.text import Text

        seen.append({"texts": [t.get_text() for t in figure.findobj(Text) if t.get_text()],
                     "lines": [line for ax in figure.axes for line in ax.lines]})
        return real(figure, target)

    monkeypatch.setattr(study_figures, "save_png", save_and_read)
    monkeypatch.setattr(plots, "save_png", save_and_read)
    return seen


def test_categories_read_in_their_natural_order():
    frame = pd.DataFrame({"age": ["age50~", "age~19", "age35~49", "age20~34"], "freq": ["freq3~", "freq0", "freq1", "freq2"]})
    assert category_order(frame, "age") == AGES  # "~" sorts after digits: alphabetical order would put age~19 last
    assert category_order(frame, "freq") == FREQS
    words = pd.DataFrame({"level": ["low", "high", "mid"], "segment_id": [1, 3, 2]})
    assert category_order(words, "level") == ["low", "mid", "high"]  # no numbers: the segment numbering decides
    assert category_order(words.drop(columns="segment_id"), "level") == ["high", "low", "mid"]
    ordered = words.astype({"level": pd.CategoricalDtype(["high", "mid", "low"], ordered=True)})
    assert category_order(ordered, "level") == ["high", "mid", "low"]


def test_customer_count_grid_is_the_hand_count_of_the_customers_file():
    counted = Counter((row["age_cat"], row["freq_cat"]) for row in csv_rows(CUSTOMERS))
    grid = customer_count_grid(pd.read_csv(CUSTOMERS), COLUMNS)
    assert list(grid.index) == AGES and list(grid.columns) == FREQS
    assert {(a, f): int(grid.loc[a, f]) for a in AGES for f in FREQS} == dict(counted)
    assert grid.to_numpy().sum() == 5000 and grid.loc["age35~49", "freq0"] == 800 and grid.loc["age~19", "freq2"] == 50
    without = customer_count_grid(pd.read_csv(CUSTOMERS).query("not (age_cat == 'age~19' and freq_cat == 'freq2')"), COLUMNS)
    assert without.loc["age~19", "freq2"] == 0 and without.to_numpy().sum() == 4950  # an empty cell counts 0


def test_probability_grids_carry_the_true_table():
    rows = csv_rows(TRUTH)
    cells = probability_cells(pd.read_csv(TRUTH), COLUMNS, ARMS)
    for arm in ARMS:
        grid = layout_grid(cells[cells["offer"] == arm], COLUMNS, "probability")
        assert list(grid.index) == AGES and list(grid.columns) == FREQS
        assert {(a, f): grid.loc[a, f] for a in AGES for f in FREQS} == {
            (row["age_cat"], row["freq_cat"]): float(row[f"prob_{arm}"]) for row in rows}
    by_segment = layout_rows(cells[cells["offer"] == "dm3"], COLUMNS, "probability")
    assert list(by_segment.index[:5]) == ["age~19 / freq0", "age~19 / freq1", "age~19 / freq2", "age~19 / freq3~", "age20~34 / freq0"]
    assert by_segment["age20~34 / freq2"] == 0.93
    with pytest.raises(ValueError, match="more than once.*age~19"):
        probability_cells(pd.read_csv(TRUTH).iloc[[0, 0, 1]], COLUMNS, ARMS)


def hand_plan() -> pd.DataFrame:
    """2 x 2 segments, shares chosen so that the minimum is hit exactly, missed by 1e-6, and never set."""
    shares = {  # segment -> (dm1, dm2, dm3)
        ("young", "rare"): (0.1, 0.8, 0.1),
        ("young", "often"): (0.800001, 0.1, 0.099999),
        ("old", "rare"): (0.1, 0.6, 0.3),
        ("old", "often"): (0.0, 0.5, 0.5),
    }
    rows = []
    for segment_id, ((age, freq), split) in enumerate(shares.items(), start=1):
        for arm, share in zip(ARMS, split):
            rows.append({"segment_id": segment_id, "age": age, "freq": freq, "n_customers": 200, "offer": arm,
                         "share": share, "expected_customers": 200 * share})
    return pd.DataFrame(rows)


def test_forced_minimum_marking_on_a_hand_made_plan():
    plan = hand_plan()
    one_number = allocation_cells(plan, ["age", "freq"], ARMS, 0.1)
    marked = one_number.cells.loc[one_number.cells["at_minimum"], ["segment_id", "offer"]]
    assert sorted(map(tuple, marked.to_numpy())) == [(1, "dm1"), (1, "dm3"), (2, "dm2"), (3, "dm1")]
    grids = one_number.grids(["age", "freq"], ARMS)
    # words without numbers: rows and columns follow the segment numbering
    assert list(grids["at_minimum"]["dm1"].index) == ["young", "old"] and list(grids["at_minimum"]["dm1"].columns) == ["rare", "often"]
    assert grids["at_minimum"]["dm1"].to_numpy().tolist() == [[True, False], [True, False]]
    assert grids["customers"]["dm2"].loc["old", "rare"] == pytest.approx(120) and grids["share"]["dm3"].loc["old", "often"] == 0.5

    per_offer = allocation_cells(plan, ["age", "freq"], ARMS, {"dm2": 0.1, "dm3": 0.3})
    marked = per_offer.cells.loc[per_offer.cells["at_minimum"], ["segment_id", "offer"]]
    assert sorted(map(tuple, marked.to_numpy())) == [(2, "dm2"), (3, "dm3")]  # dm1 has no minimum: never marked
    assert per_offer.minimum == {"dm1": 0.0, "dm2": 0.1, "dm3": 0.3}
    assert not allocation_cells(plan, ["age", "freq"], ARMS, None).cells["at_minimum"].any()
    rows = one_number.rows(["age", "freq"], ARMS)
    assert rows["at_minimum"].loc["young / rare"].tolist() == [True, False, True]
    with pytest.raises(ValueError, match=r"not arms"):
        allocation_cells(plan, ["age", "freq"], ARMS, {"dm9": 0.1})


def test_segment_plan_from_the_lp_on_the_grid(example):
    _, _, segments, plan = example
    cells = allocation_cells(plan, COLUMNS, ARMS, 0.1)
    grids = cells.grids(COLUMNS, ARMS)
    shares = sum(grids["share"][arm] for arm in ARMS)
    assert np.allclose(shares.to_numpy(), 1.0)  # everyone gets exactly one offer, in every cell
    sizes = layout_grid(segments, COLUMNS, "n_customers")
    for arm in ARMS:
        assert np.allclose(grids["customers"][arm].to_numpy(), (grids["share"][arm] * sizes).to_numpy())
        at_floor = np.isclose(grids["share"][arm].to_numpy(), 0.1, rtol=0, atol=1e-9)
        assert (grids["at_minimum"][arm].to_numpy() == at_floor).all()
    assert 0 < sum(int(g.to_numpy().sum()) for g in grids["at_minimum"].values()) < 48


def test_customer_plan_counted_per_cell_by_hand(example):
    customers, _, segments, _ = example
    ids = customers.merge(segments[["segment_id", *COLUMNS]], on=COLUMNS)
    offer = np.where(ids["freq_cat"] == "freq0", "dm3", np.where(ids["age_cat"] == "age~19", "dm2", "dm1"))
    offer[ids["customer_id"].to_numpy() % 7 == 0] = "dm2"
    plan = pd.DataFrame({"customer_id": ids["customer_id"], "segment_id": ids["segment_id"], "offer": offer})
    counted = Counter((age, freq, o) for age, freq, o in zip(ids["age_cat"], ids["freq_cat"], offer))
    sizes = Counter(zip(ids["age_cat"], ids["freq_cat"]))
    grids = customer_plan_cells(plan, segments, COLUMNS, ARMS).grids(COLUMNS, ARMS)
    for arm in ARMS:
        for a in AGES:
            for f in FREQS:
                assert grids["customers"][arm].loc[a, f] == counted[(a, f, arm)]
                assert grids["share"][arm].loc[a, f] == pytest.approx(counted[(a, f, arm)] / sizes[(a, f)])
    assert not any(g.to_numpy().any() for g in grids["at_minimum"].values())
    with pytest.raises(ValueError, match=r"missing from the segment catalog: \[99\]"):
        customer_plan_cells(plan.assign(segment_id=99), segments, COLUMNS, ARMS)


def test_labels_name_segments_by_their_categories(example):
    _, truth, _, _ = example
    labels = segment_labels(truth, COLUMNS)
    assert labels[1] == "age~19 / freq0" and labels[7] == "age20~34 / freq2" and len(labels) == 16
    assert offer_tick_labels(ARMS, COST) == ["dm1\nno coupon", "dm2\n10 USD coupon", "dm3\n20 USD coupon"]
    assert FiguresConfig().segment_names == NAMES and FiguresConfig().outcome == "visit"
    with pytest.raises(ValueError, match="blank names"):
        FiguresConfig(segment_names={"age_cat": " "})


def draw_all(example, folder: Path) -> dict[str, Path]:
    customers, truth, segments, plan = example
    offers = offer_tick_labels(ARMS, COST)
    ids = customers.merge(segments[["segment_id", *COLUMNS]], on=COLUMNS)
    customer_plan = pd.DataFrame({"customer_id": ids["customer_id"], "segment_id": ids["segment_id"],
                                  "offer": np.where(ids["freq_cat"] == "freq0", "dm3", "dm1")})
    frontier = pd.DataFrame({"budget": [6000.0, 8000.0, 10000.0, 12000.0], "expected_incremental_conversions": [200.0, 270.0, 325.0, 370.0],
                             "cost_per_incremental_conversion": [30.0, 29.6, 30.8, 32.4],
                             "marginal_cost_per_incremental_conversion": [25.0, 28.6, 36.4, 44.4]})
    return {
        "counts": study_figures.plot_customer_counts(customers, COLUMNS, folder / "counts.png", NAMES),
        "probabilities": study_figures.plot_probability_heatmaps(truth, COLUMNS, ARMS, folder / "probabilities.png", NAMES,
                                                                 offers, "visit", "the true table"),
        "lines": study_figures.plot_probability_lines(truth, COLUMNS, ARMS, folder / "lines.png", offers, "visit", NAMES, COST),
        "plan": plots.plot_allocation_shares(plan, COLUMNS, ARMS, folder / "plan.png", 0.1, NAMES, offers),
        "customer_plan": study_figures.plot_customer_plan(customer_plan, segments, COLUMNS, ARMS, folder / "customer_plan.png",
                                                         NAMES, offers),
        "frontier": plots.plot_budget_frontier(frontier, 10_000, 9_000, folder / "frontier.png", 35.0, "what a conversion is worth"),
    }


def test_figures_have_fixed_sizes_and_the_same_bytes_every_time_even_after_causalml(example, tmp_path):
    first = draw_all(example, tmp_path / "a")
    again = draw_all(example, tmp_path / "b")
    sizes = {name: png_size(path) for name, path in first.items()}
    inches = {"counts": (6.4, 4.08), "probabilities": (13.3, 3.9), "lines": (9.0, 5.2), "plan": (14.5, 4.4),
              "customer_plan": (14.5, 4.4), "frontier": (11.0, 4.2)}  # from the 4 x 4 grid and 3 offers only
    assert sizes == {name: (int(w * DPI + 0.5), int(h * DPI + 0.5)) for name, (w, h) in inches.items()}
    assert all(first[name].read_bytes() == again[name].read_bytes() for name in first)
    with matplotlib.rc_context():  # causalml sets its style on import; reloading runs that code again here
        matplotlib.rcdefaults()  # (an earlier test may have imported causalml already)
        before = matplotlib.rcParams["axes.facecolor"]
        importlib.reload(importlib.import_module("causalml.metrics.visualize"))
        assert matplotlib.rcParams["axes.facecolor"] != before  # the global style really changed
        styled = draw_all(example, tmp_path / "c")
    assert all(first[name].read_bytes() == styled[name].read_bytes() for name in first)


def test_pictures_speak_the_analysts_language(example, tmp_path, drawn):
    draw_all(example, tmp_path)
    counts, probabilities, lines, plan, customer_plan, frontier = (set(figure["texts"]) for figure in drawn)
    everything = counts | probabilities | lines | plan | customer_plan | frontier
    assert not any("dual" in text.lower() or "segment_id" in text for text in everything)
    assert {"age group", "purchase frequency (visits)", "age35~49\n(2,000)", "freq0\n(2,000)", "800", "50"} <= counts
    rows = csv_rows(TRUTH)
    assert {f"{float(row['prob_dm3']):.0%}" for row in rows} <= probabilities  # every cell annotated in %
    assert {"dm2: 10 USD coupon", "probability of a visit"} <= probabilities
    assert "In all 16 segments the probability rises with the coupon value" in lines
    assert {"age20~34 / freq2", "dm3\n20 USD coupon"} <= lines
    assert "held at the forced 10% minimum share (optimize.min_share)" in plan
    assert {"10%\n(20)", "dm1: no coupon"} <= plan  # age~19 / freq0: 10% of 200 customers
    assert "held at the forced 10% minimum share (optimize.min_share)" not in customer_plan  # no forced minimum there
    assert {"100%\n(800)", "–"} <= customer_plan  # age35~49 / freq0 all get dm3; dm1 nobody there
    assert {"cost of one more incremental conversion", "what a conversion is worth: 35 USD"} <= frontier


def test_a_segment_whose_probability_falls_is_dashed_and_counted(example, tmp_path, drawn):
    _, truth, _, _ = example
    bent = truth.copy()
    bent.loc[bent["segment_id"] == 5, "prob_dm2"] = 0.05  # below its dm1 probability 0.11
    study_figures.plot_probability_lines(bent, COLUMNS, ARMS, tmp_path / "lines.png", outcome="visit", coupon_cost=COST)
    figure = drawn[-1]
    assert "The probability rises or stays with the coupon value in 15 of 16 segments; dashed: it falls somewhere" in figure["texts"]
    dashed = [line.get_label() for line in figure["lines"] if line.get_linestyle() == "--"]
    assert dashed == ["age20~34 / freq0"]


def test_learned_probabilities_keep_one_decimal_throughout(example, tmp_path, drawn):
    _, truth, _, _ = example
    learned = truth.astype({"prob_dm1": float, "prob_dm3": float})
    learned.loc[learned["segment_id"] == 1, "prob_dm3"] = 0.24
    learned.loc[learned["segment_id"] == 2, "prob_dm1"] = 0.20682
    study_figures.plot_probability_heatmaps(learned, COLUMNS, ARMS, tmp_path / "learned.png", NAMES, source="learned")
    texts = set(drawn[-1]["texts"])
    assert {"24.0%", "20.7%", "93.0%"} <= texts and "24%" not in texts  # one format in one picture


@pytest.mark.parametrize("columns", [["age_cat"], ["age_cat", "freq_cat", "segment_id"]])
def test_without_a_grid_segments_get_labelled_bars(example, tmp_path, drawn, columns):
    customers, truth, segments, plan = example
    customers = customers.merge(segments[["segment_id", *COLUMNS]], on=COLUMNS)
    if len(columns) == 1:  # segments are age groups: their table and plan, customer-weighted
        weighted = truth.merge(segments[["segment_id", "n_customers"]], on="segment_id")
        truth = weighted.groupby("age_cat").apply(
            lambda g: pd.Series({f"prob_{a}": np.average(g[f"prob_{a}"], weights=g["n_customers"]) for a in ARMS})
        ).reset_index()
        table = truth.merge(segment_catalog(customers, columns), on="age_cat")
        plan = optimize_segments(table, columns, ARMS, "dm1", COST, budget=10_000, min_share=0.1).plan
    with pytest.raises(ValueError, match="more than once"):
        allocation_cells(example[3], ["age_cat"], ARMS, 0.1)  # a plan of 16 segments is not one of 4 age groups
    study_figures.plot_customer_counts(customers, columns, tmp_path / "counts.png", NAMES)
    study_figures.plot_probability_heatmaps(truth, columns, ARMS, tmp_path / "probabilities.png", NAMES)
    study_figures.plot_segment_plan(plan, columns, ARMS, 0.1, tmp_path / "plan.png", NAMES)
    texts = [set(figure["texts"]) for figure in drawn]
    if len(columns) == 1:
        assert {"age~19", "age50~", "2,000", "1,000"} <= texts[0]  # customers per age group
        assert "segment (age group)" in texts[0]
    else:
        assert {"age~19 / freq0 / 1", "age50~ / freq3~ / 16"} <= texts[2]
        assert "held at the forced 10% minimum share (optimize.min_share)" in texts[2]
    assert all(png_size(tmp_path / name)[1] > 150 for name in ("counts.png", "probabilities.png", "plan.png"))
