"""Declarative ingest of messy discount files: parsing, encodings, and errors a person can act on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from offerflow.discounts.config import DiscountFileConfig, DiscountsConfig, EncodingConfig, ProfitCheckConfig
from offerflow.discounts.ingest import encode_features, parse_discount_text, read_discount_file
from offerflow.errors import ConfigError, InputDataError, InputFileError

HEADER = "sales;discount;profit;age;gender;cust_state;tenure;sales_prediction"
ROWS = [
    "1000.0;US$ 10.0;40.0;30;1.0;MA;6;900.5",
    "2000.0;US$ 50.0;50.0;41;0.0;MG;8;1200.0",
    "1500.0;US$ 0.0;75.0;25;;SP;3;1000.0",
]
OBSERVATIONAL = DiscountFileConfig(path=Path("obs.csv"), delimiter=";", currency={"discount": "US$"})
REQUIRED = ["discount", "profit", "sales", "age", "gender", "cust_state", "sales_prediction", "tenure"]


def parse(
    rows: list[str], spec: DiscountFileConfig = OBSERVATIONAL, config: DiscountsConfig | None = None
) -> pd.DataFrame:
    return parse_discount_text(
        "\n".join([HEADER, *rows]) + "\n", "obs.csv", spec, config or DiscountsConfig(), REQUIRED
    )


def test_parses_currency_codes_and_missing_gender():
    frame = parse(ROWS)
    assert frame["discount"].tolist() == [10.0, 50.0, 0.0]
    assert frame["cust_state"].tolist() == ["MA", "MG", "SP"]
    assert frame["gender"].tolist()[:2] == [1, 0] and frame["gender"].isna().tolist() == [False, False, True]
    assert frame["sales_prediction"].dtype == float


def test_decimal_comma_and_rename():
    spec = DiscountFileConfig(path=Path("x.csv"), delimiter=";", decimal=",", rename={"desconto": "discount"})
    text = "desconto;profit;sales\n12,5;37,5;1000\n0;50;1000\n"
    config = DiscountsConfig()
    frame = parse_discount_text(text, "x.csv", spec, config, ["discount", "profit", "sales"])
    assert frame["discount"].tolist() == [12.5, 0.0]
    assert frame["profit"].tolist() == [37.5, 50.0]


def test_malformed_currency_names_file_column_values_and_rows():
    rows = [*ROWS, "1200.0;US$ 12O.0;20.0;30;1.0;MA;6;900.5", "1200.0;125.0;-65.0;30;1.0;MA;6;900.5"]
    with pytest.raises(InputDataError) as caught:
        parse(rows)
    message = str(caught.value)
    assert "obs.csv" in message and "'discount'" in message
    assert "'US$ 12O.0' (row 4)" in message  # the letter O, not a zero
    assert "'125.0' (row 5)" in message  # no currency prefix: units unknown
    assert caught.value.exit_code == 3


def test_unknown_state_code_and_bad_number_reported_together():
    rows = [*ROWS, "1200.0;US$ 10.0;50.0;thirty;1.0;XX;6;900.5", "1200.0;US$ 10.0;50.0;30;1.0;XX;6;900.5"]
    with pytest.raises(InputDataError) as caught:
        parse(rows)
    message = str(caught.value)
    assert "column 'cust_state': unknown codes" in message and "'XX' (rows 4, 5)" in message
    assert "column 'age'" in message and "'thirty' (row 4)" in message


def test_gender_code_outside_declared_set():
    with pytest.raises(InputDataError, match=r"column 'gender': unknown codes .*'2.0' \(row 4\)"):
        parse([*ROWS, "1200.0;US$ 10.0;50.0;30;2.0;MA;6;900.5"])


def test_empty_cell_refused_where_encoding_says_error():
    config = DiscountsConfig(encodings={"cust_state": EncodingConfig(categories=("SP", "MA", "MG"))})
    with pytest.raises(InputDataError, match=r"cust_state.*empty cells are not allowed.*row 4"):
        parse([*ROWS, "1200.0;US$ 10.0;50.0;30;1.0;;6;900.5"], config=config)


def test_wrong_delimiter_hint_and_missing_columns():
    spec = DiscountFileConfig(path=Path("obs.csv"), delimiter=",", currency={"discount": "US$"})
    with pytest.raises(InputDataError, match="header was read as one column: is the delimiter ',' right"):
        parse(ROWS, spec)
    with pytest.raises(InputDataError, match=r"missing column\(s\) \['sales_prediction'\]"):
        parse_discount_text(
            "sales,discount,profit,age,gender,cust_state,tenure\n",
            "r.csv",
            DiscountFileConfig(path=Path("r.csv")),
            DiscountsConfig(),
            REQUIRED,
        )


def test_empty_and_absent_files(tmp_path):
    with pytest.raises(InputFileError, match="empty"):
        parse_discount_text("  \n", "e.csv", OBSERVATIONAL, DiscountsConfig(), REQUIRED)
    with pytest.raises(InputFileError, match="not found"):
        read_discount_file(tmp_path / "nope.csv", OBSERVATIONAL, DiscountsConfig(), REQUIRED)


def test_profit_identity_check_names_rows():
    spec = DiscountFileConfig(
        path=Path("obs.csv"),
        delimiter=";",
        currency={"discount": "US$"},
        profit_check=ProfitCheckConfig(margin=0.05, tolerance=0.01),
    )
    frame = parse(ROWS[:2], spec)  # 0.05 * 1000 - 10 = 40; 0.05 * 2000 - 50 = 50
    assert len(frame) == 2
    with pytest.raises(
        InputDataError, match=r"'profit' is not 0.05 x 'sales' - 'discount'.*1 row\(s\), e.g. rows \[3\]"
    ):
        parse([*ROWS[:2], "1000.0;US$ 10.0;41.0;30;1.0;MA;6;900.5"], spec)


def test_encode_features_reference_category_and_missing_indicator():
    config = DiscountsConfig()
    frame = parse(ROWS)
    matrix = encode_features(frame, ["age", "gender", "cust_state"], config)
    assert "cust_state=SP" not in matrix.columns  # SP is the first (reference) state
    assert matrix["cust_state=MA"].tolist() == [1.0, 0.0, 0.0]
    assert matrix["gender=1"].tolist() == [1.0, 0.0, 0.0]
    assert matrix["gender=missing"].tolist() == [0.0, 0.0, 1.0]
    assert matrix.shape[1] == 1 + 2 + (len(config.encodings["cust_state"].categories) - 1)
    with pytest.raises(InputDataError, match=r"'tenure' has empty cells \(rows \[2\]\)"):
        encode_features(pd.DataFrame({"tenure": [1.0, np.nan]}), ["tenure"], config)


def test_config_refuses_impossible_declarations():
    with pytest.raises(ValueError, match="delimiter and decimal"):
        DiscountFileConfig(path=Path("x"), delimiter=",", decimal=",")
    with pytest.raises(ValueError, match="cannot be features or controls"):
        DiscountsConfig(features=("discount", "age"))
    with pytest.raises(ValueError, match="levels must start at 0"):
        DiscountsConfig(policy={"levels": [10, 20]})
    with pytest.raises(ValueError, match="rule.level 55 is not one of"):
        DiscountsConfig(evaluation={"rule": {"level": 55}})
    assert issubclass(ConfigError, ValueError)
