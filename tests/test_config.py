"""params.yaml -> typed config: every mistake is an error naming the key."""

from __future__ import annotations

import pytest

from conftest import set_params
from offerflow.config import ConfigError, load_params


def test_example_params_load(project):
    params = load_params(project / "params.yaml")
    assert params.arms.names == ["dm1", "dm2", "dm3"]
    assert params.arms.treatments == ["dm2", "dm3"]
    assert params.optimize.budget == 10_000
    assert params.optimize.min_share == pytest.approx(0.1)
    assert params.path(params.data.customers) == project / "data/external/customers.csv"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"optimize__budgett": 5}, "optimize.budgett: unknown key"),
        ({"optimize__budget": "lots"}, "optimize.budget"),
        ({"optimize__budget": -1}, "optimize.budget"),
        ({"optimize__min_share": 1.5}, "optimize.min_share"),
        ({"arms__control": "dm9"}, "control arm 'dm9' is not one of the arms"),
        ({"arms__coupon_cost": {"dm1": 0, "dm2": -10}}, "coupon_cost must be >= 0"),
        ({"simulate__campaigns": 0}, "simulate.campaigns"),
        ({"train__base_model": "xgb"}, "train.base_model"),
        ({"data__customers": "data/external/nope.csv"}, "data.customers: file not found"),
        ({"optimize__probability_table": "missing.csv"}, "optimize.probability_table: file not found"),
    ],
)
def test_bad_params_name_the_key(project, edit, message):
    set_params(project, **edit)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("'", ".")):
        load_params(project / "params.yaml")


def test_history_must_be_given_and_exist_when_not_simulated(project):
    set_params(project, simulate__enabled=False)
    with pytest.raises(ConfigError, match="data.history: not set"):
        load_params(project / "params.yaml")
    set_params(project, data__history="data/external/history.csv")
    with pytest.raises(ConfigError, match="data.history: file not found"):
        load_params(project / "params.yaml")
    set_params(project, simulate__enabled=True)
    with pytest.raises(ConfigError, match="data.history is set while simulate.enabled is true"):
        load_params(project / "params.yaml")


def test_overrides_apply_and_are_validated(project):
    params = load_params(project / "params.yaml", overrides={"optimize.budget": 8000})
    assert params.optimize.budget == 8000
    with pytest.raises(ConfigError, match="optimize.budget"):
        load_params(project / "params.yaml", overrides={"optimize.budget": -5})


def test_params_hash_depends_only_on_the_named_keys(project):
    base = load_params(project / "params.yaml")
    cheaper = load_params(project / "params.yaml", overrides={"optimize.budget": 5000})
    assert base.params_hash("train", "data") == cheaper.params_hash("train", "data")
    assert base.params_hash("optimize") != cheaper.params_hash("optimize")
    assert base.params_hash("optimize.budget") != cheaper.params_hash("optimize.budget")
    assert base.params_hash("optimize.min_share") == cheaper.params_hash("optimize.min_share")
