"""Great Expectations suites for the discount files, and the check that features precede the discount."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, discount_data_dir
from offerflow.discounts.config import DiscountFileConfig, DiscountsConfig
from offerflow.discounts.ingest import encode_features, read_discount_file
from offerflow.discounts.simulator import simulate_discounts
from offerflow.discounts.validation import check_pre_treatment, treatment_dependent_columns, validate_discount_frame
from offerflow.errors import ConfigError, InputDataError

SUITES = ROOT / "expectations"
REQUIRED = ["discount", "profit", "sales", "age", "gender", "cust_state"]



@pytest.fixture(scope="module")
def session():
    from offerflow.validation.gx_session import GxSession

    return GxSession(None)


def small_frame(n: int = 200, seed: int = 3) -> pd.DataFrame:
    frame = simulate_discounts(n, seed, design="randomized").frame
    return frame[["discount", "profit", "sales", "age", "gender", "cust_state", "tenure"]]


def test_clean_frame_passes_both_suites(session):
    frame = small_frame()
    suites = [SUITES / "discounts_history.json", SUITES / "discounts_randomized.json"]
    documents = validate_discount_frame(frame, "random.csv", suites, DiscountsConfig(), REQUIRED, session)
    assert set(documents) == {"discounts_history.json", "discounts_randomized.json"}
    assert all(document["success"] for document in documents.values())


def test_broken_values_are_listed_with_rows(session):
    frame = small_frame()
    frame.loc[4, "discount"] = -10.0
    frame.loc[[7, 9], "profit"] = np.nan
    with pytest.raises(InputDataError) as caught:
        validate_discount_frame(
            frame, "random.csv", [SUITES / "discounts_history.json"], DiscountsConfig(), REQUIRED, session
        )
    message = str(caught.value)
    assert "random.csv" in message and "2 failure(s)" in message
    assert "column 'discount': expect_column_values_to_be_between; 1 unexpected; sample values [-10.0]" in message
    assert "rows [5]" in message  # data row 5 = index 4
    assert "column 'profit': expect_column_values_to_not_be_null" in message and "rows [8, 10]" in message


def test_randomized_suite_refuses_a_continuous_design(session):
    frame = small_frame()
    frame["discount"] = np.round(np.random.default_rng(0).uniform(0, 100, len(frame)), 3)
    config = DiscountsConfig(policy={"max_arms": 60})
    with pytest.raises(InputDataError, match="expect_column_unique_value_count_to_be_between"):
        validate_discount_frame(frame, "random.csv", [SUITES / "discounts_randomized.json"], config, REQUIRED, session)


def test_missing_suite_is_a_config_error(session, tmp_path):
    with pytest.raises(ConfigError, match="expectation suite not found"):
        validate_discount_frame(small_frame(), "r.csv", [tmp_path / "nope.json"], DiscountsConfig(), REQUIRED, session)


def test_pre_treatment_check_flags_a_column_caused_by_the_discount():
    simulated = simulate_discounts(3000, 5, design="randomized").frame
    rng = np.random.default_rng(1)
    simulated["later_spend"] = 50 + 2.0 * (simulated["discount"] > 100) * rng.gamma(2.0, 50.0, len(simulated))
    config = DiscountsConfig(
        features=("age", "gender", "cust_state"),
        controls=("tenure", "later_spend"),
        encodings={
            "cust_state": {"categories": ["SP", "MG", "RJ", "BA", "RS", "DF"]},
            "gender": {"categories": [0, 1], "missing": "own_category"},
        },
    )
    matrix = encode_features(simulated, ["age", "gender", "cust_state", "tenure", "later_spend"], config)
    flagged = treatment_dependent_columns(matrix, simulated["discount"])
    assert list(flagged) == ["later_spend"]
    with pytest.raises(InputDataError, match="'later_spend'.*measured after it"):
        check_pre_treatment(matrix, simulated["discount"], "random.csv")


def test_example_randomized_file_shows_later_spending_is_post_discount():
    """The example's spend columns cover months after the joining discount: several move with it."""
    folder = discount_data_dir()
    spends = [f"spend_{m}m_{c}" for m in (1, 3, 6) for c in ("groceries", "clothes", "baby")]
    config = DiscountsConfig()
    required = ["discount", "profit", "sales", "age", "gender", "cust_state", "tenure", *spends]
    spec = DiscountFileConfig(path=folder / "random_data.csv")
    frame = read_discount_file(folder / "random_data.csv", spec, config, required)
    matrix = encode_features(frame, ["age", "gender", "cust_state", "tenure", *spends], config)
    flagged = treatment_dependent_columns(matrix, frame["discount"])
    assert {"spend_3m_groceries", "spend_6m_groceries", "spend_6m_baby", "spend_3m_clothes"} <= set(flagged)
    assert not {"age", "tenure", "gender=1", "spend_1m_groceries"} & set(flagged)
    assert not [column for column in flagged if column.startswith("cust_state")]
