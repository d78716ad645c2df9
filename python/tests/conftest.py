"""Shared fixtures: a small Kortrijk-like geography and raw pings around it."""

from __future__ import annotations

from typing import Any

import h3
import pytest

import crowdtally as ct

KEY = b"test-key-0123456789abcdef"
CENTRE = (50.828, 3.265)
MENEN = (50.797, 3.122)


def geography_tables() -> dict[str, Any]:
    """Tables for a country BE > province > two municipalities, and two zones."""
    kortrijk7 = h3.grid_disk(h3.latlng_to_cell(*CENTRE, 7), 1)
    menen7 = [h3.latlng_to_cell(*MENEN, 7)]
    assert not set(kortrijk7) & set(menen7)
    square = h3.latlng_to_cell(*CENTRE, 9)
    station = h3.grid_ring(square, 2)[0]
    return {
        "regions": {
            "region_id": ["BE", "WVL", "kortrijk", "menen"],
            "level": ["country", "province", "municipality", "municipality"],
            "parent_id": [None, "BE", "WVL", "WVL"],
            "population": [None, None, 80_000, 33_000],
        },
        "region_cells": {
            "cell": kortrijk7 + menen7,
            "region_id": ["kortrijk"] * len(kortrijk7) + ["menen"] * len(menen7),
        },
        "zones": {
            "zone_id": ["grote-markt", "station"],
            "name": ["Grote Markt", "Station"],
            "category": ["culture", "transport"],
        },
        "zone_cells": {"zone_id": ["grote-markt", "station"], "cell": [square, station]},
    }


@pytest.fixture
def geography() -> ct.Geography:
    return ct.Geography.from_tables(**geography_tables(), study_area=["kortrijk"])


@pytest.fixture
def config() -> ct.Config:
    return ct.Config(key=KEY)


def raw_pings() -> dict[str, list[Any]]:
    """Nine rows: five clean, one of each per-row cleaning reason, one duplicate."""
    lat, lon = CENTRE
    return {
        "subscriber": [
            "206010000000001",
            "206010000000001",
            "206010000000002",
            "206010000000002",
            "206010000000003",
            None,
            "206010000000004",
            "206010000000004",
            "206010000000003",
        ],
        "ts": [
            "2026-07-01 10:00:00",
            "2026-07-01 11:00:00",
            "2026-07-01T12:00:00+02:00",
            "2026-07-02 09:30:00.75",
            "2026-07-02 10:00:00",
            "2026-07-02 10:00:00",
            "2026-07-02 10:00:00",
            "not a time",
            "2026-07-02 10:00:00",
        ],
        "lat": [lat, lat, lat, MENEN[0], lat, lat, 123.0, lat, lat],
        "lon": [lon, lon, lon, MENEN[1], lon, lon, lon, lon, lon],
    }
