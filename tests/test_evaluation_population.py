"""Whom policies are valued on: the customers file, or (a new batch) the held-out history's own customers."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import ROOT
from offerflow.config import load_params
from offerflow.errors import InputDataError
from offerflow.evaluation.population import choose_population, held_out_customers_frame
from offerflow.stages.allocate import customer_constraints

HELD = pd.Series([1, 1, 2, 3, 3, 3])
NEEDED = ["age_cat", "freq_cat"]


def test_the_customers_file_when_it_holds_every_held_out_customer() -> None:
    choice = choose_population("auto", HELD, pd.Series([1, 2, 3, 4]), ["customer_id", "arm"], NEEDED)
    assert choice.kind == "customers" and choice.unknown_customers == 0


def test_a_new_batch_values_the_rule_on_held_out_customers_when_the_history_can_be_scored() -> None:
    choice = choose_population("auto", HELD, pd.Series([7, 8]), ["customer_id", *NEEDED], NEEDED)
    assert choice.kind == "held_out_customers" and choice.unknown_customers == 3 and "new batch" in choice.reason


def test_without_the_columns_to_score_them_unknown_customers_are_left_out_and_counted() -> None:
    choice = choose_population("auto", HELD, pd.Series([1, 8]), ["customer_id"], NEEDED)
    assert choice.kind == "customers" and choice.unknown_customers == 2 and "['age_cat', 'freq_cat']" in choice.reason
    with pytest.raises(InputDataError, match=r"must carry column\(s\) \['age_cat', 'freq_cat'\]"):
        choose_population("held_out_customers", HELD, pd.Series([8]), ["customer_id"], NEEDED)
    forced = choose_population("customers", HELD, pd.Series([1, 8]), ["customer_id", *NEEDED], NEEDED)
    assert forced.kind == "customers" and "left out" in forced.reason


def test_held_out_customers_frame_keeps_each_customers_latest_row() -> None:
    history = pd.DataFrame({"customer_id": [3, 1, 3], "age_cat": ["a", "b", "c"], "arm": ["x", "y", "z"]})
    frame = held_out_customers_frame(history, ["age_cat", "not_there"])
    assert frame.to_dict("list") == {"customer_id": [1, 3], "age_cat": ["b", "c"]}


def test_capacities_and_group_caps_scale_to_the_population_shares_do_not() -> None:
    params = load_params(ROOT / "params.yaml", {
        "optimize.capacity": {"dm3": 1000}, "optimize.groups": {"coupons": {"offers": ["dm2", "dm3"], "max": 1501}},
        "optimize.min_share": 0.1}, check_files=False)
    whole, third = customer_constraints(params), customer_constraints(params, scale=0.3)
    assert whole.capacity[2] == 1000 and third.capacity[2] == 300
    assert whole.groups[0].max_customers == 1501 and third.groups[0].max_customers == 450  # floor(450.3)
    assert third.min_share == whole.min_share
