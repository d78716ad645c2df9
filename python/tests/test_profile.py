"""profile() and visits(): per-device microdata from raw or prepared pings."""

from __future__ import annotations

import pickle

import pyarrow as pa
import pytest

import crowdtally as ct
from conftest import raw_pings


def test_profile_from_raw_and_prepared_agree(geography: ct.Geography, config: ct.Config) -> None:
    prepared = ct.prepare(raw_pings(), geography, config)
    from_prepared = ct.profile(prepared, geography, config)
    from_raw = ct.profile(raw_pings(), geography, config)
    assert from_prepared.to_arrow().equals(from_raw.to_arrow())
    assert from_prepared.name == "devices"
    assert from_prepared.column_names == [
        "device",
        "class",
        "origin",
        "home",
        "home_nights",
        "presence_days",
        "nights",
        "country",
        "roamer",
    ]
    assert len(from_prepared) == prepared.report["devices"] == 3
    table = pa.table(from_prepared)
    assert set(table.column("class").to_pylist()) <= {
        "resident",
        "regular",
        "overnight_visitor",
        "day_visitor",
    }
    devices = set(prepared.to_arrow().column("device").to_pylist())
    assert set(table.column("device").to_pylist()) == devices


def test_visits_follow_the_method(geography: ct.Geography, config: ct.Config) -> None:
    visits = ct.visits(raw_pings(), geography, config).to_arrow()
    assert visits.column_names == ["device", "zone", "start", "end", "dwell_s", "qualifies"]
    rows = visits.to_pylist()
    # Subscriber 1: pings at 10:00 and 11:00 local on the market square, nothing else:
    # one hour in the zone and one in its category.
    hour_long = [r for r in rows if r["dwell_s"] == 3600]
    assert sorted(r["zone"] for r in hour_long) == ["category:culture", "grote-markt"]
    for row in rows:
        assert row["dwell_s"] == int((row["end"] - row["start"]).total_seconds())
        assert row["qualifies"] == (row["dwell_s"] >= config.min_dwell)
    strict = ct.Config(key=b"test-key-0123456789abcdef", min_dwell="30min")
    strict_rows = ct.visits(raw_pings(), geography, strict).to_arrow().to_pylist()
    assert [r["qualifies"] for r in strict_rows] == [r["dwell_s"] >= 1800 for r in strict_rows]


def test_microdata_cannot_be_pickled(geography: ct.Geography, config: ct.Config) -> None:
    table = ct.profile(raw_pings(), geography, config)
    with pytest.raises(TypeError, match="microdata"):
        pickle.dumps(table)
    assert "devices" in repr(table)
    assert table.to_polars().height == 3
