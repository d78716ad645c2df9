"""A newcomer's first mistakes get a warning or an error that says what to do, never a
silent empty release; and the release speaks in names, for people and BI tools."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import crowdtally as ct
from conftest import CENTRE, KEY, geography_tables
from crowdtally import synth

LAT, LON = CENTRE


def pings(n: int = 40, **overrides: list[Any]) -> dict[str, list[Any]]:
    """`n` pings of four devices on the Grote Markt on 1 July, hourly."""
    table: dict[str, list[Any]] = {
        "subscriber": [f"2060100000000{i % 4:02d}" for i in range(n)],
        "ts": [f"2026-07-01T{8 + i // 4:02d}:00:00" for i in range(n)],
        "lat": [LAT] * n,
        "lon": [LON] * n,
    }
    table.update(overrides)
    return table


def analyze(data: Any, geography: ct.Geography, config: ct.Config, **kw: Any) -> ct.Release:
    return ct.analyze(data, geography, config, bucket="day", **kw)


def messages(warned: pytest.WarningsRecorder) -> list[str]:
    """The crowdtally warnings recorded."""
    return [str(w.message) for w in warned if issubclass(w.category, ct.CrowdtallyWarning)]


def test_clean_pings_release_without_a_warning(
    geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        release = analyze(pings(), geography, config, subscribers={"kortrijk": 8_000})
    assert [str(w.message) for w in warned] == []
    counted = release.report["pings"]
    assert counted["kept"] == 40
    assert counted["in_regions"] == counted["in_study_area"] == counted["in_zones"] == 40
    # The report's appendix says them in words.
    page = release.report_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "pings kept in a zone" in page


def test_a_synthetic_city_without_roaming_factors_says_why_estimates_are_null() -> None:
    city = synth.scenario(scale=0.001, days=3, seed=5)
    with pytest.warns(ct.CrowdtallyWarning, match="no roaming factor for country:"):
        release = ct.analyze(city.pings, city.geography, city.config(), "day")
    assert any("no roaming factor" in line for line in repr(release).splitlines()[:3])


def test_epoch_milliseconds_are_refused_with_the_fix(
    geography: ct.Geography, config: ct.Config
) -> None:
    ms = [1_782_900_000_000 + 3_600_000 * i for i in range(40)]
    with pytest.raises(ct.InputError, match="epoch milliseconds") as refused:
        analyze(pings(ts=ms), geography, config)
    assert refused.value.field == "ts"
    assert "divide by 1000" in str(refused.value)


def test_day_first_dates_are_dropped_loudly_with_the_format_that_reads(
    geography: ct.Geography, config: ct.Config
) -> None:
    dates = [f"01/07/2026 {8 + i // 4:02d}:00" for i in range(40)]
    with pytest.warns(ct.CrowdtallyWarning) as warned:
        release = analyze(pings(ts=dates), geography, config)
    said = [m for m in messages(warned) if "dropped as bad_ts" in m]
    assert len(said) == 1
    assert "100.0 %" in said[0]
    assert "ISO 8601" in said[0]
    assert "no ping survived cleaning" in " ".join(release.report["warnings"])


def test_swapped_lat_and_lon_are_suspected(geography: ct.Geography, config: ct.Config) -> None:
    with pytest.warns(ct.CrowdtallyWarning) as warned:
        release = analyze(pings(lat=[LON] * 40, lon=[LAT] * 40), geography, config)
    assert any("are lat and lon swapped" in m for m in messages(warned))
    assert any("no kept ping falls in a zone" in m for m in messages(warned))
    assert release.report["pings"]["in_regions"] == 0


def test_pings_in_another_country_than_the_regions_are_suspected(
    geography: ct.Geography, config: ct.Config
) -> None:
    paris = pings(lat=[48.8566] * 40, lon=[2.3522] * 40)
    with pytest.warns(ct.CrowdtallyWarning, match="another country than the regions"):
        analyze(paris, geography, config)


def test_an_empty_input_warns(geography: ct.Geography, config: ct.Config) -> None:
    empty = pa.table(pings(0), schema=pa.table(pings(1)).schema)
    dated = ct.Config(key=KEY, period=("2026-07-01", "2026-07-02"))
    with pytest.warns(ct.CrowdtallyWarning, match="the input holds no ping"):
        release = analyze(empty, geography, dated)
    assert release.report["pings"]["read"] == 0


def test_an_empty_dict_says_what_to_give(geography: ct.Geography, config: ct.Config) -> None:
    with pytest.raises(ct.InputError, match="dict without columns") as refused:
        analyze({}, geography, config)
    assert "subscriber, ts" in str(refused.value)


def test_a_csv_path_says_how_to_read_csv(
    geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    path = tmp_path / "pings.csv"
    path.write_text("subscriber,ts,lat,lon\na,2026-07-01T10:00:00,50.8,3.2\n", encoding="utf-8")
    with pytest.raises(ct.InputError, match="is not a Parquet file") as refused:
        analyze(str(path), geography, config)
    assert "pyarrow.csv.read_csv(path)" in str(refused.value)


def test_a_column_under_another_name_is_named_with_the_mapping(
    geography: ct.Geography, config: ct.Config
) -> None:
    data = pings()
    data["timestamp"] = data.pop("ts")
    with pytest.raises(ct.InputError) as refused:
        analyze(data, geography, config)
    assert refused.value.field == "ts"
    assert 'columns={"ts": "timestamp"}' in str(refused.value)
    # And with the mapping it releases.
    release = analyze(data, geography, config, columns={"ts": "timestamp"})
    assert release.report["pings"]["kept"] == 40


def test_an_unknown_level_lists_the_levels(geography: ct.Geography, config: ct.Config) -> None:
    with pytest.raises(ct.ConfigError, match="its levels are") as refused:
        analyze(pings(), geography, config, level="gemeente")
    assert refused.value.field == "level"
    assert "municipality" in str(refused.value)


def test_country_names_as_roaming_keys_are_refused(
    geography: ct.Geography, config: ct.Config
) -> None:
    with pytest.raises(ct.ConfigError, match="alpha-2") as refused:
        analyze(pings(), geography, config, roaming_factors={"France": 3.3})
    assert refused.value.field == "roaming_factors"


def test_the_exclusive_end_of_the_period_is_said_where_it_bites(geography: ct.Geography) -> None:
    week = [f"2026-07-0{1 + i % 7}T10:00:00" for i in range(42)]
    config = ct.Config(key=KEY, period=("2026-07-01", "2026-07-07"))
    with pytest.warns(ct.CrowdtallyWarning) as warned:
        analyze(pings(42, ts=week, subscriber=["a"] * 42), geography, config)
    said = [m for m in messages(warned) if "outside_period" in m]
    assert len(said) == 1, messages(warned)
    assert "end is exclusive" in said[0]


def test_a_polygon_smaller_than_a_cell_gets_a_cell_and_a_warning() -> None:
    kiosk = [[3.2640, 50.8290], [3.2660, 50.8290], [3.2660, 50.8305], [3.2640, 50.8305]]
    zones = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[*kiosk, kiosk[0]]]},
                "properties": {"zone_id": "kiosk", "name": "The kiosk"},
            }
        ],
    }
    country = [[2.5, 49.5], [6.4, 49.5], [6.4, 51.5], [2.5, 51.5], [2.5, 49.5]]
    regions = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [country]},
                "properties": {"region_id": "BE", "level": "country", "name": "Belgium"},
            }
        ],
    }
    with pytest.warns(ct.CrowdtallyWarning, match='zone "kiosk" is smaller than a cell'):
        geography = ct.Geography.from_geojson(
            regions=json.dumps(regions),
            zones=json.dumps(zones),
            study_area=["BE"],
            resolution=9,
            region_resolution=5,
        )
    cells = pa.table(geography.to_tables()["zone_cells"])
    assert cells.num_rows == 1


def test_the_release_names_zones_and_origins_and_dates_its_buckets(config: ct.Config) -> None:
    tables = geography_tables()
    tables["regions"]["name"] = ["Belgium", "West Flanders", "Kortrijk", "Menen"]
    geography = ct.Geography.from_tables(**tables, study_area=["kortrijk"])
    # Names survive the tables and a pickle of the geography.
    assert pa.table(geography.to_tables()["regions"])["name"].to_pylist()[2] == "Kortrijk"
    release = ct.analyze(pings(), geography, config, bucket="day", level="municipality")
    table = release.to_arrow()
    assert table.column_names[-3:] == ["bucket_ts", "zone_name", "origin_name"]
    names = dict(zip(table["origin"].to_pylist(), table["origin_name"].to_pylist(), strict=True))
    assert names["*"] == "all origins"
    assert set(table["zone_name"].to_pylist()) >= {"Grote Markt", "Station", "culture"}
    first = table["bucket_ts"][0].as_py()
    assert first.isoformat() == "2026-07-01T00:00:00+02:00"
    assert table["bucket_ts"].type == pa.timestamp("ms", tz="Europe/Brussels")


def test_csv_has_whole_people_and_parquet_keeps_the_exact_estimates(
    geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    small = ct.Config(key=KEY, k=2)
    release = analyze(pings(), geography, small, subscribers={"kortrijk": 3, "menen": 9})
    exact = [v for v in release.to_arrow()["est_devices"].to_pylist() if v is not None]
    assert any(v != round(v) for v in exact)
    csv = release.write(tmp_path / "release.csv").read_text(encoding="utf-8").splitlines()
    header = csv[0].replace('"', "").split(",")
    column = header.index("est_devices")
    written = [row.split(",")[column] for row in csv[1:]]
    assert all(value == "" or value.lstrip("-").isdigit() for value in written)
    back = ct.Release.read(release.write(tmp_path / "release.parquet"))
    assert (
        back.to_arrow()["est_devices"].to_pylist() == release.to_arrow()["est_devices"].to_pylist()
    )
