"""Declared hyperparameter ranges: parsing CLI text, range checks, readable descriptions."""

import math

import pytest

from dspjax.hparams import ConfigError, allowed, check_value, choice_name, parse_value, specs
from dspjax.pruning import DSPHParams

META = {name: meta for name, meta, _ in specs(DSPHParams)}


@pytest.mark.parametrize("name,text,value", [
    ("lam", "0", 0.0), ("lam", "1e-3", 1e-3), ("c_final", "1", 1.0), ("min_alive", "8", 8),
    ("importance", "output", 1), ("threshold_rule", "norm", 2), ("penalty_form", "proximal", 1),
])
def test_parse_accepts_values_in_range(name, text, value):
    assert parse_value(name, META[name], text) == value


@pytest.mark.parametrize("name,text", [
    ("lam", "-1e-9"), ("lam", "nan"), ("lam", "inf"), ("lam", "abc"), ("delta", "0"),
    ("c_final", "1.0001"), ("k_final", "0"), ("min_alive", "2.5"), ("min_alive", "0"),
    ("importance", "Taylor"), ("gmp_sparsity", "1"),
])
def test_parse_refuses_values_out_of_range_naming_the_field(name, text):
    with pytest.raises(ConfigError, match=f"^{name}="):
        parse_value(name, META[name], text)


def test_allowed_describes_open_and_closed_bounds():
    assert allowed(META["c_final"]) == "a number in [0, 1]"
    assert allowed(META["delta"]) == "a number in (0, inf)"
    assert allowed(META["gmp_sparsity"]) == "a number in [0, 1)"
    assert allowed(META["min_alive"]) == "an integer in [1, inf)"
    assert allowed(META["importance"]).startswith("one of taylor, output, activation, magnitude")


def test_choice_codes_round_trip():
    for name in ("importance", "threshold_rule", "penalty_form", "pruning"):
        for code, label in enumerate(META[name]["choices"]):
            assert choice_name(DSPHParams, name, code) == label
            check_value(name, META[name], code)
        with pytest.raises(ConfigError):
            check_value(name, META[name], len(META[name]["choices"]))


def test_every_default_is_in_its_own_range():
    for name, meta, default in specs(DSPHParams):
        check_value(name, meta, default)
        assert not (isinstance(default, float) and math.isnan(default))


@pytest.mark.parametrize("field,value", [("prune_every", 2.5), ("min_alive", 1.5),
                                         ("threshold_rule", True), ("importance", 1.0)])
def test_validate_refuses_non_integers_for_integer_fields(field, value):
    with pytest.raises(ConfigError, match=f"^{field}="):
        DSPHParams(**{field: value}).validate()
