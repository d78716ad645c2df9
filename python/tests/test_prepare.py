"""prepare(): cleaning, pseudonymization and location, from every kind of input."""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import duckdb
import h3
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import crowdtally as ct
from conftest import CENTRE, KEY, raw_pings

SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "data" / "multimno-sample"
REASONS = ["opt_out", "bad_subscriber", "bad_position", "bad_ts", "outside_period", "duplicate"]


def counts_add_up(report: dict[str, Any]) -> None:
    assert list(report["dropped"]) == REASONS
    assert report["pings_read"] == report["pings_kept"] + sum(report["dropped"].values())


def test_every_row_is_kept_or_counted(geography: ct.Geography, config: ct.Config) -> None:
    prepared = ct.prepare(raw_pings(), geography, config)
    report = prepared.report
    counts_add_up(report)
    assert report["pings_read"] == 9
    assert report["dropped"] == {
        "opt_out": 0,
        "bad_subscriber": 1,
        "bad_position": 1,
        "bad_ts": 1,
        "outside_period": 0,
        "duplicate": 1,
    }
    assert report["pings_kept"] == len(prepared) == 5
    assert report["devices"] == 3
    assert report["period"] == {"start": "2026-07-01", "end": "2026-07-03"}
    assert report["period_label"] == "2026Q3"
    table = prepared.to_arrow()
    assert table.column_names == ["device", "ts", "cell", "region", "zones", "country"]
    assert table.schema.field("ts").type == pa.timestamp("s", tz="UTC")
    regions = table.column("region").to_pylist()
    assert regions.count("menen") == 1
    assert regions.count("kortrijk") == 4
    square = int(h3.str_to_int(h3.latlng_to_cell(*CENTRE, 9)))
    for cell, zones in zip(
        table.column("cell").to_pylist(), table.column("zones").to_pylist(), strict=True
    ):
        assert zones == (["grote-markt", "category:culture"] if cell == square else [])


def test_opt_out_is_first_and_counted(geography: ct.Geography) -> None:
    config = ct.Config(key=KEY, opt_out=["206010000000002", "206010000000004", "absent"])
    report = ct.prepare(raw_pings(), geography, config).report
    counts_add_up(report)
    # Subscriber 4's pings are opted out before their bad position and bad time count.
    assert report["dropped"]["opt_out"] == 4
    assert report["dropped"]["bad_position"] == 0
    assert report["dropped"]["bad_ts"] == 0
    assert report["opt_out"] == {"pings": 4, "subscribers": 2}


def test_outside_period(geography: ct.Geography) -> None:
    config = ct.Config(key=KEY, period=("2026-07-02", "2026-07-03"))
    report = ct.prepare(raw_pings(), geography, config).report
    counts_add_up(report)
    assert report["dropped"]["outside_period"] == 3
    assert report["period_label"] == "2026Q3"


def test_duplicates_keep_the_smallest_cell(geography: ct.Geography, config: ct.Config) -> None:
    near = h3.latlng_to_cell(50.83, 3.27, 9)
    far = h3.latlng_to_cell(50.80, 3.20, 9)
    small, large = sorted([near, far], key=h3.str_to_int)
    pings = {
        "subscriber": [7, 7, 7],
        "ts": [1_782_900_000, 1_782_900_000, 1_782_900_000],
        "cell": [large, small, large],
    }
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        shuffled = {k: [v[i] for i in order] for k, v in pings.items()}
        prepared = ct.prepare(shuffled, geography, config)
        assert prepared.to_arrow().column("cell").to_pylist() == [h3.str_to_int(small)]
        assert prepared.report["dropped"]["duplicate"] == 2


def frames() -> dict[str, Any]:
    data = raw_pings()
    table = pa.table(data)
    return {
        "pyarrow": table,
        "pandas": table.to_pandas(),
        "polars": pl.DataFrame(data),
        "duckdb": duckdb.from_arrow(table),
        "record_batch": table.to_batches()[0],
        "numpy": {k: np.array(v, dtype=object) for k, v in data.items()},
    }


@pytest.mark.parametrize("kind", list(frames()))
def test_round_trips_from_every_input(
    kind: str, geography: ct.Geography, config: ct.Config
) -> None:
    expected = ct.prepare(raw_pings(), geography, config).to_arrow()
    prepared = ct.prepare(frames()[kind], geography, config)
    assert prepared.to_arrow().equals(expected)
    assert pa.table(prepared).equals(expected)
    as_pandas = prepared.to_pandas()
    assert as_pandas["device"].tolist() == expected.column("device").to_pylist()
    as_polars = prepared.to_polars()
    assert as_polars["device"].to_list() == expected.column("device").to_pylist()


def test_timestamp_units_and_zones(geography: ct.Geography, config: ct.Config) -> None:
    instant = pd.Timestamp("2026-07-01T10:00:00.999Z")
    seconds = int(instant.floor("s").timestamp())
    for ts in (
        pa.array([instant], pa.timestamp("ns", tz="Asia/Tokyo")),
        pa.array([instant.tz_localize(None)], pa.timestamp("ms")),
        pa.array([seconds], pa.int64()),
        pa.array(["2026-07-01T12:00:00.999"]),  # local Brussels time, UTC+2
        pa.array(["2026-07-01T10:00:00Z"]),
        np.array([instant.tz_localize(None).to_datetime64()], dtype="datetime64[us]"),
    ):
        pings = {"subscriber": ["a"], "ts": ts, "lat": [CENTRE[0]], "lon": [CENTRE[1]]}
        prepared = ct.prepare(pings, geography, config)
        assert prepared.to_arrow().column("ts").cast(pa.int64()).to_pylist() == [seconds]


def test_cells_as_input_and_custom_columns(geography: ct.Geography, config: ct.Config) -> None:
    fine = h3.latlng_to_cell(*CENTRE, 12)
    pings = pa.table(
        {
            "imsi": ["x", "x", "x"],
            "time": ["2026-07-01 10:00:00", "2026-07-01 11:00:00", "2026-07-01 12:00:00"],
            "h3": pa.array([h3.str_to_int(fine), h3.str_to_int(h3.cell_to_parent(fine, 5)), 1]),
        }
    )
    columns = {"subscriber": "imsi", "ts": "time", "cell": "h3"}
    prepared = ct.prepare(pings, geography, config, columns=columns)
    assert prepared.report["dropped"]["bad_position"] == 2  # coarser than 9, and invalid
    assert prepared.to_arrow().column("cell").to_pylist() == [
        h3.str_to_int(h3.cell_to_parent(fine, 9))
    ]
    with pytest.raises(ct.InputError, match="unknown role"):
        ct.prepare(pings, geography, config, columns={"imsi": "subscriber"})


def test_missing_and_mistyped_columns_name_the_column(
    geography: ct.Geography, config: ct.Config
) -> None:
    data = raw_pings()
    del data["ts"]
    with pytest.raises(ct.InputError, match="ts") as missing:
        ct.prepare(data, geography, config)
    assert missing.value.field == "ts"
    data = raw_pings()
    data["lat"] = ["north"] * len(data["lat"])
    with pytest.raises(ct.InputError, match="lat"):
        ct.prepare(data, geography, config)
    with pytest.raises(TypeError, match="pings"):
        ct.prepare(42, geography, config)
    with pytest.raises(ct.ConfigError, match="resolution"):
        ct.prepare(raw_pings(), geography, ct.Config(key=KEY, resolution=8))


def test_empty_input_is_not_an_error(geography: ct.Geography, config: ct.Config) -> None:
    empty: dict[str, list[Any]] = {"subscriber": [], "ts": [], "lat": [], "lon": []}
    prepared = ct.prepare(empty, geography, config)
    assert len(prepared) == 0
    assert prepared.report["pings_read"] == 0
    assert prepared.report["period"] is None
    assert prepared.to_arrow().num_rows == 0


def test_lat_lon_to_cell_agrees_with_h3_py(geography: ct.Geography, config: ct.Config) -> None:
    rng = random.Random(20261128)
    lats = [rng.uniform(-90, 90) for _ in range(10_000)]
    lons = [rng.uniform(-180, 180) for _ in range(10_000)]
    # Repeated positions (served from the position memo) and boundary points.
    repeats = [rng.randrange(10_000) for _ in range(2_000)]
    lats += [lats[i] for i in repeats] + [90.0, -90.0, 0.0, 0.0, 45.0, -45.0]
    lons += [lons[i] for i in repeats] + [0.0, 180.0, 180.0, -180.0, -180.0, 179.999999]
    n = len(lats)
    pings = {
        "subscriber": [1] * n,
        "ts": list(range(1_782_900_000, 1_782_900_000 + n)),
        "lat": lats,
        "lon": lons,
    }
    table = ct.prepare(pings, geography, config).to_arrow()
    assert table.num_rows == n
    # One device: rows come back sorted by time, which is input order here.
    got = table.column("cell").to_pylist()
    expected = [h3.str_to_int(h3.latlng_to_cell(a, o, 9)) for a, o in zip(lats, lons, strict=True)]
    assert got == expected


def test_multimno_sample_loads_and_accounts_for_every_row(geography: ct.Geography) -> None:
    events = pq.read_table(SAMPLE / "mno_events.parquet")
    config = ct.Config(key=KEY, tz="Europe/Madrid")
    columns = {"subscriber": "user_id", "ts": "timestamp", "lat": "latitude", "lon": "longitude"}
    prepared = ct.prepare(events, geography, config, columns=columns)
    report = prepared.report
    counts_add_up(report)
    assert report["pings_read"] == events.num_rows == 1823
    assert report["subscriber_kind"] == "binary"
    assert report["dropped"]["bad_subscriber"] == events.column("user_id").null_count
    assert report["pings_kept"] > 0
    assert report["period"]["start"] >= "2023-01-07"
    # Every kept position was a real WGS84 coordinate.
    kept = prepared.to_arrow()
    assert kept.num_rows == report["pings_kept"]
    assert set(kept.column("region").to_pylist()) == {"unknown"}


def test_no_raw_id_or_key_leaks_anywhere(geography: ct.Geography) -> None:
    secrets = ["206019999999991", "206019999999992"]
    config = ct.Config(key=KEY, opt_out=[secrets[1]], period_label="2026Q3")
    pings = {
        "subscriber": [secrets[0], secrets[0], secrets[1], None],
        "ts": ["2026-07-01 10:00:00", "garbage", "2026-07-01 10:00:00", "2026-07-01 10:00:00"],
        "lat": [CENTRE[0]] * 4,
        "lon": [CENTRE[1]] * 4,
    }
    prepared = ct.prepare(pings, geography, config)
    texts = [repr(config), str(config.to_dict()), repr(prepared), str(prepared.report)]
    texts.append(prepared.to_pandas().to_csv())
    texts.append(repr(geography))
    for broken in (
        lambda: ct.prepare({**pings, "lat": ["x"] * 4}, geography, config),
        lambda: ct.pseudonymize([secrets[0], None], key=KEY, period_label="L"),
        lambda: ct.Config(key=KEY[:10], opt_out=secrets),
        lambda: pickle.dumps(config),
        lambda: pickle.dumps(prepared),
    ):
        with pytest.raises((ct.CrowdtallyError, TypeError)) as caught:
            broken()
        texts.append(str(caught.value))
        texts.append(repr(caught.value))
    blob = "\n".join(texts)
    for secret in [*secrets, KEY.decode(), KEY.decode()[:16]]:
        assert secret not in blob
    # The device column holds pseudonyms, not raw ids.
    devices = prepared.to_arrow().column("device").to_pylist()
    assert all(str(d) not in secrets for d in devices)
