"""Config: defaults, every invalid field named, secrets never shown."""

from __future__ import annotations

import datetime as dt
import pickle
from typing import Any

import pytest

import crowdtally as ct

KEY = b"config-test-key-0123456789"


def test_defaults_follow_the_method() -> None:
    config = ct.Config(key=KEY)
    assert config.tz == "Europe/Brussels"
    assert config.resolution is None  # the geography's resolution is used
    assert config.home_country == "BE"
    assert config.k == 30
    assert config.max_gap == 3 * 3600
    assert config.min_dwell == 0
    assert config.min_nights == 3
    assert config.usual_env_min_days is None
    assert config.period is None


def test_durations_and_periods() -> None:
    config = ct.Config(
        key=KEY,
        max_gap="1h30m",
        min_dwell=dt.timedelta(minutes=10),
        period=(dt.date(2026, 7, 1), "2026-10-01"),
    )
    assert config.max_gap == 5400
    assert config.min_dwell == 600
    assert config.period == ("2026-07-01", "2026-10-01")


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("key", {"key": b"too-short"}),
        ("k", {"k": 1}),
        ("k", {"k": -3}),
        ("max_gap", {"max_gap": 0}),
        ("max_gap", {"max_gap": "3 hours"}),
        ("min_dwell", {"min_dwell": -1}),
        ("min_nights", {"min_nights": 0}),
        ("usual_env_min_days", {"usual_env_min_days": 0}),
        ("tz", {"tz": "Europe/Atlantis"}),
        ("period", {"period": ("2026-07-02", "2026-07-01")}),
        ("period", {"period": ("2026-07-01",)}),
        ("period", {"period": ("2026-13-01", "2026-14-01")}),
        ("resolution", {"resolution": 16}),
        ("home_country", {"home_country": "Belgium"}),
        ("period_label", {"period_label": ""}),
        ("opt_out", {"opt_out": [1.5]}),
    ],
)
def test_each_invalid_field_is_named(field: str, overrides: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"key": KEY, **overrides}
    with pytest.raises(ct.ConfigError) as caught:
        ct.Config(**arguments)
    assert caught.value.field == field
    assert field in str(caught.value)
    assert KEY.decode() not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_secrets_never_show() -> None:
    config = ct.Config(key=KEY, opt_out=["206011111111111", b"\x01\x02"])
    shown = repr(config) + str(config.to_dict())
    assert KEY.decode() not in shown
    assert "206011111111111" not in shown
    assert config.opt_out_count == 2
    assert "key" not in config.to_dict()
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(config)
