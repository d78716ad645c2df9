"""The front door: ``ct.Study`` with its verbs, ``ct.Engine`` for the machine settings,
``ct.ReleaseSpec``, and a ``Release`` as the publishable object it is (Arrow stream,
pickle, a Parquet file that holds its report)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import crowdtally as ct
from crowdtally import synth

SPECS = [ct.ReleaseSpec(bucket=b) for b in ("period", "day", "hour")]


@pytest.fixture(scope="module")
def city() -> synth.SyntheticCity:
    return synth.scenario(persons=3_000, days=5, seed=3)


def same(a: ct.Release, b: ct.Release) -> None:
    assert pa.table(a).equals(pa.table(b))
    assert a.report == b.report


def test_a_study_runs_every_verb_and_the_shortcuts_are_its_calls(city: synth.SyntheticCity) -> None:
    config = city.config()
    study = ct.Study(city.geography, config)
    release = study.release(city.pings, bucket="day", roaming_factors={"*": 3.0})
    same(release, ct.analyze(city.pings, city.geography, config, "day", roaming_factors={"*": 3.0}))
    assert len(release) > 0
    assert release.report["devices"]["total"] > 100
    prepared = study.prepare(city.pings)
    assert prepared.report == ct.prepare(city.pings, city.geography, config).report
    devices = study.profile(city.pings)
    assert pa.table(devices).equals(pa.table(ct.profile(city.pings, city.geography, config)))
    assert pa.table(prepared.profile()).equals(pa.table(devices))
    visits = study.visits(city.pings)
    assert pa.table(prepared.visits()).equals(pa.table(visits))
    assert study.columns["ts"] == "ts"
    secret = b"a key nobody may see, 32 bytes!!"
    shown = repr(ct.Study(city.geography, ct.Config(key=secret)))
    assert "key=<32 secret bytes>" in shown
    assert secret.decode()[:10] not in shown


def test_three_releases_of_one_prepare_equal_three_analyze_calls(city: synth.SyntheticCity) -> None:
    config = city.config()
    study = ct.Study(city.geography, config)
    prepared = study.prepare(city.pings)
    from_prepared = prepared.releases(SPECS)
    from_one_read = study.releases(city.pings, [{"bucket": s.bucket} for s in SPECS])
    for spec, one, two in zip(SPECS, from_prepared, from_one_read, strict=True):
        alone = ct.analyze(city.pings, city.geography, config, spec.bucket)
        same(one, alone)
        same(two, alone)
        assert one.report["parameters"]["bucket"] == spec.bucket
    # A prepared set of pings is released with its own study.
    same(prepared.release(bucket="day"), study.release(prepared, bucket="day"))
    assert prepared.study.config.k == config.k


def test_a_prepared_set_refuses_another_geography_or_configuration(
    city: synth.SyntheticCity,
) -> None:
    prepared = ct.prepare(city.pings, city.geography, city.config())
    other = synth.scenario(persons=200, days=3, seed=4)
    with pytest.raises(ct.ConfigError, match="geography") as error:
        ct.analyze(prepared, other.geography, city.config())
    assert error.value.field == "geography"
    stricter = ct.Config(key=b"another key of 16+ bytes", period=city.config().period)
    with pytest.raises(ct.ConfigError) as error:
        ct.analyze(prepared, city.geography, stricter)
    assert error.value.field == "config"
    with pytest.raises(ct.ConfigError) as error:
        ct.Study(other.geography, city.config()).release(prepared)
    assert error.value.field == "geography"


def test_the_engine_holds_the_machine_settings(city: synth.SyntheticCity, tmp_path: Path) -> None:
    seen: list[ct.Progress] = []
    engine = ct.Engine(threads=2, memory_limit="2MiB", spill_dir=tmp_path, progress=seen.append)
    assert (engine.threads, engine.memory_limit, engine.spill_dir) == (2, 2 << 20, tmp_path)
    assert "threads=2" in repr(engine)
    assert "<callable>" in repr(engine)
    study = ct.Study(city.geography, city.config())
    spilled = study.release(city.pings, bucket="day", engine=engine)
    same(spilled, study.release(city.pings, bucket="day"))
    assert any(event.bytes_spilled > 0 for event in seen)
    assert list(tmp_path.iterdir()) == []
    # One way of giving the settings per call.
    with pytest.raises(ct.ConfigError) as error:
        ct.analyze(city.pings, city.geography, city.config(), engine=engine, threads=1)
    assert error.value.field == "engine"
    with pytest.raises(ct.ConfigError) as error:
        ct.Engine(memory_limit="lots")
    assert error.value.field == "memory_limit"
    with pytest.raises(ct.ConfigError) as error:
        ct.Engine(threads=-1)
    assert error.value.field == "threads"
    with pytest.raises(ct.ConfigError) as error:
        ct.Engine(progress="yes")  # type: ignore[arg-type]
    assert error.value.field == "progress"


def test_a_release_spec_is_checked_and_shown() -> None:
    spec = ct.ReleaseSpec("day", "province", ["day_visitor"], {"kortrijk": 10}, {"FR": 2.0})
    assert spec == ct.ReleaseSpec("day", "province", "day_visitor", {"kortrijk": 10}, {"FR": 2.0})
    assert spec != ct.ReleaseSpec("hour")
    shown = repr(spec)
    assert "bucket='day'" in shown
    assert "'FR': 2.0" in shown
    assert "10" not in shown, "subscriber counts are the operator's: counted, not shown"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"bucket": "fortnight"}, "bucket"),
        ({"classes": ["tourist"]}, "classes"),
        ({"roaming_factors": {"FR": "x"}}, "roaming_factors"),
    ]
    for keywords, field in bad:
        with pytest.raises(ct.ConfigError) as error:
            ct.ReleaseSpec(**keywords)
        assert error.value.field == field


def test_a_study_names_an_unknown_level_and_lists_the_levels(city: synth.SyntheticCity) -> None:
    study = ct.Study(city.geography, city.config())
    with pytest.raises(ct.ConfigError, match="levels are") as error:
        study.release(city.pings, level="gemeente")
    assert error.value.field == "level"
    with pytest.raises(ct.ConfigError) as error:
        study.releases(city.pings, [])
    assert error.value.field == "specs"


def test_a_release_is_an_arrow_stream_for_pyarrow_polars_and_duckdb(
    city: synth.SyntheticCity,
) -> None:
    release = ct.analyze(city.pings, city.geography, city.config(), "day")
    table = pa.table(release)
    assert table.column_names == list(ct.release.COLUMNS + ct.release.LABEL_COLUMNS)
    assert table.num_rows == len(release)
    frame = pl.DataFrame(release)
    assert frame.height == len(release)
    assert frame.columns == table.column_names
    relation = duckdb.sql("select count(*) from release where not suppressed and origin = '*'")
    assert relation is not None
    released = relation.fetchall()
    assert (
        released[0][0]
        == pa.compute.sum(
            pa.compute.and_(
                pa.compute.invert(table["suppressed"]), pa.compute.equal(table["origin"], "*")
            )
        ).as_py()
    )


def test_a_release_pickles_and_its_parquet_file_gives_it_back(
    city: synth.SyntheticCity, tmp_path: Path
) -> None:
    release = ct.analyze(city.pings, city.geography, city.config(), "day")
    back = pickle.loads(pickle.dumps(release))
    assert isinstance(back, ct.Release)
    same(back, release)
    path = release.write(tmp_path / "2026Q3.parquet")
    read = ct.Release.read(path)
    same(read, release)
    # Any Parquet reader sees the table, and the report in the schema metadata.
    file = pq.read_table(path)
    assert file.equals(pa.table(release).replace_schema_metadata(file.schema.metadata))
    metadata: dict[bytes, bytes] = file.schema.metadata or {}
    assert b"crowdtally.report" in metadata
    # Microdata still refuse.
    prepared = ct.prepare(city.pings, city.geography, city.config())
    for microdata in (prepared, prepared.profile()):
        with pytest.raises(TypeError, match="microdata"):
            pickle.dumps(microdata)


def test_reading_a_file_that_is_not_a_release_names_it(
    city: synth.SyntheticCity, tmp_path: Path
) -> None:
    release = ct.analyze(city.pings, city.geography, city.config(), "day")
    written = pq.read_table(release.write(tmp_path / "release.parquet"))
    metadata = written.schema.metadata or {}
    without_report = tmp_path / "without-report.parquet"
    pq.write_table(written.replace_schema_metadata({}), without_report)
    cut = tmp_path / "cut.parquet"
    pq.write_table(written.select(["zone", "origin"]).replace_schema_metadata(metadata), cut)
    damaged = tmp_path / "damaged.parquet"
    pq.write_table(written.replace_schema_metadata({b"crowdtally.report": b"{not json"}), damaged)
    for path, why in [
        (without_report, "no crowdtally report"),
        (cut, "columns of a release"),
        (damaged, "damaged crowdtally report"),
        (tmp_path / "missing.parquet", "No such file"),
    ]:
        with pytest.raises(ct.InputError, match=why) as error:
            ct.Release.read(path)
        assert error.value.field == str(path)
        assert str(path) in str(error.value)
