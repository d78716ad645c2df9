"""crowdtally.synth: the synthetic city from Python and from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import crowdtally as ct
from crowdtally import synth


def test_same_seed_same_city_other_seed_other_city() -> None:
    a = synth.scenario(persons=1_500, days=7, seed=5)
    b = synth.scenario(persons=1_500, days=7, seed=5)
    c = synth.scenario(persons=1_500, days=7, seed=6)
    # pandas' equality treats the NaN positions of dirty rows as equal.
    assert a.pings.to_pandas().equals(b.pings.to_pandas())
    assert not a.pings.to_pandas().equals(c.pings.to_pandas())
    assert a.truth["persons"].to_arrow().equals(b.truth["persons"].to_arrow())
    assert abs(a.people - 1_500) < 300


def test_batches_add_up_to_the_pings_and_the_method_runs() -> None:
    city = synth.scenario(persons=1_500, days=7, seed=2, integer_ids=True)
    total = sum(len(batch) for batch in city.iter_batches(people_per_batch=300))
    assert total == len(city.pings)
    assert pa.table(city.pings).schema.field("subscriber").type == pa.uint64()
    prepared = ct.prepare(city.pings, city.geography, city.config())
    report = prepared.report
    assert report["pings_read"] == total
    assert report["pings_read"] == report["pings_kept"] + sum(report["dropped"].values())
    devices = ct.profile(prepared, city.geography, city.config()).to_arrow()
    assert devices.num_rows == report["devices"]


def test_truth_tables() -> None:
    city = synth.scenario(persons=1_500, days=7, seed=3)
    persons = pa.table(city.truth["persons"])
    assert persons.column_names == [
        "person",
        "subscriber",
        "customer",
        "role",
        "class",
        "origin",
        "home",
        "municipality",
        "country",
    ]
    assert persons.num_rows == city.people
    roles = set(persons.column("role").to_pylist())
    assert {"resident", "other"} <= roles
    zone_days = pa.table(city.truth["zone_days"])
    assert zone_days.num_rows > 0
    assert set(zone_days.column("date").to_pylist()) <= {
        f"2026-07-{day:02d}" for day in range(1, 9)
    }


def test_subscribers_are_the_customers_by_municipality_of_the_truth() -> None:
    city = synth.scenario(persons=1_500, days=7, seed=3)
    persons = pa.table(city.truth["persons"]).to_pylist()
    expected: dict[str, int] = {}
    for person in persons:
        if person["customer"] and person["municipality"] is not None:
            expected[person["municipality"]] = expected.get(person["municipality"], 0) + 1
    assert city.subscribers() == expected
    assert set(expected) <= set(city.geography.regions)
    # Roamers are customers too, of their own operators: none is a subscriber here.
    assert sum(expected.values()) < sum(p["customer"] for p in persons)


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(ct.ConfigError, match="missing_rate"):
        synth.scenario(persons=100, days=3, missing_rate=1.5)
    with pytest.raises(ct.ConfigError, match="no_such_parameter"):
        synth.scenario(persons=100, days=3, no_such_parameter=1)
    with pytest.raises(ct.ConfigError, match="preset"):
        synth.scenario(preset="atlantis")


def test_command_line_writes_parquet(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "crowdtally.synth", "--persons", "800", "--days", "3"]
    result = subprocess.run(
        [*command, "--seed", "4", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "people written" in result.stdout
    pings = pq.read_table(tmp_path / "pings.parquet")
    persons = pq.read_table(tmp_path / "truth_persons.parquet")
    assert pings.num_rows > 0
    assert persons.num_rows > 0
    assert (tmp_path / "truth_zone_days.parquet").exists()
    city = synth.scenario(persons=800, days=3, seed=4)
    assert pings.num_rows == len(city.pings)
