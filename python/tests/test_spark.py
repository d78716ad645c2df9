"""crowdtally.spark on a local Spark (two cores): the same releases as a single run, on
any number of partitions, and nothing secret in what Spark writes.

Spark and Java are part of the project's test set-up: a missing one fails these tests,
it does not skip them."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.errors import PythonException
from pyspark.sql import DataFrame, SparkSession

import crowdtally as ct
import crowdtally.spark as cts
from crowdtally import distributed, synth

KEY = "spark test key of 32 bytes long!"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spark")
    paths = {name: root / name for name in ("local", "events", "input")}
    for path in paths.values():
        path.mkdir()
    return paths


@pytest.fixture(scope="module")
def spark(dirs: dict[str, Path]) -> Iterator[SparkSession]:
    # Executors read the key from the environment they inherit; the job never holds it.
    os.environ["CROWDTALLY_KEY"] = KEY
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("crowdtally-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.local.dir", str(dirs["local"]))
        .config("spark.eventLog.enabled", "true")
        .config("spark.eventLog.dir", str(dirs["events"]))
        .config("spark.eventLog.compress", "false")
        .config("spark.shuffle.compress", "false")
        .config("spark.shuffle.spill.compress", "false")
        .config("spark.broadcast.compress", "false")
        # The shuffle files are read back by a test: the context cleaner must not delete
        # them, at whatever moment a garbage collection lets it, while the test reads.
        .config("spark.cleaner.referenceTracking", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    del os.environ["CROWDTALLY_KEY"]


@pytest.fixture(scope="module")
def city() -> synth.SyntheticCity:
    return synth.scenario(persons=2_000, days=7, seed=11)


@pytest.fixture(scope="module")
def pings_path(city: synth.SyntheticCity, dirs: dict[str, Path]) -> Path:
    path = dirs["input"] / "pings.parquet"
    # Several row groups, so that Spark reads several input partitions.
    pq.write_table(pa.table(city.pings), path, row_group_size=20_000)
    return path


@pytest.fixture(scope="module")
def df(spark: SparkSession, pings_path: Path) -> DataFrame:
    return spark.read.parquet(str(pings_path))


def config(city: synth.SyntheticCity, *, with_period: bool = True) -> ct.Config:
    """The city's configuration, with the first subscriber of the pings opted out."""
    period = city.config().period if with_period else None
    first = next(s for s in pa.table(city.pings).column("subscriber").to_pylist() if s)
    return ct.Config(key=KEY, period=period, opt_out=[first])


SPECS: list[dict[str, Any]] = [
    {"bucket": "period"},
    {"bucket": "day", "level": "province"},
    {"bucket": "hour"},
    {
        "bucket": "day",
        "privacy": ct.DP(rho=1e18),
        "subscribers": {"kortrijk": 500},
        "roaming_factors": {"*": 3.0},
    },
]


def assert_same(single: list[ct.Release], split: list[ct.Release]) -> None:
    assert len(single) == len(split)
    for a, b in zip(single, split, strict=True):
        assert pa.table(a).equals(pa.table(b))
        assert a.report == b.report


@pytest.mark.parametrize("partitions", [1, 2, 7])
def test_releases_on_spark_equal_a_single_run(
    city: synth.SyntheticCity, df: DataFrame, partitions: int
) -> None:
    cfg = config(city)
    single = ct.Study(city.geography, cfg).releases(pa.table(city.pings), SPECS)
    on_spark = cts.releases(df, city.geography, cfg, SPECS, partitions=partitions)
    assert_same(single, on_spark)
    assert single[0].report["pings"]["dropped"]["opt_out"] > 0


def test_analyze_finds_the_period_with_a_scan(city: synth.SyntheticCity, df: DataFrame) -> None:
    cfg = config(city, with_period=False)
    single = ct.analyze(pa.table(city.pings), city.geography, cfg, bucket="day")
    on_spark = cts.analyze(df, city.geography, cfg, bucket="day", partitions=3)
    assert_same([single], [on_spark])
    assert on_spark.report["parameters"]["period"] == single.report["parameters"]["period"]


def test_an_empty_dataframe_gives_the_empty_release(
    city: synth.SyntheticCity, df: DataFrame
) -> None:
    cfg = config(city, with_period=False)
    empty = df.limit(0)
    single = ct.analyze(pa.table(city.pings).slice(0, 0), city.geography, cfg)
    assert_same([single], [cts.analyze(empty, city.geography, cfg)])


def test_nothing_spark_writes_holds_a_raw_id_or_the_key(
    city: synth.SyntheticCity, df: DataFrame, dirs: dict[str, Path]
) -> None:
    cts.releases(df, city.geography, config(city), SPECS[:2], partitions=2)
    files = [
        path
        for directory in (dirs["local"], dirs["events"])
        for path in directory.rglob("*")
        if path.is_file()
    ]
    # The shuffle wrote the pseudonymous pings, and the event log the jobs.
    shuffled = [p for p in files if p.name.startswith("shuffle_") and p.suffix == ".data"]
    assert sum(p.stat().st_size for p in shuffled) > 100_000
    assert any(dirs["events"] in p.parents for p in files)
    written = b"".join(path.read_bytes() for path in files)
    assert KEY.encode() not in written
    ids = {s for s in pa.table(city.pings).column("subscriber").to_pylist() if s is not None}
    leaked = [s for s in ids if str(s).encode() in written]
    assert leaked == []


def test_a_bad_input_fails_on_the_driver_before_any_job(
    city: synth.SyntheticCity, df: DataFrame
) -> None:
    with pytest.raises(ct.InputError) as error:
        cts.analyze(df.drop("ts"), city.geography, config(city))
    assert error.value.field == "ts"


def test_executors_without_the_key_fail_with_a_clear_error(
    city: synth.SyntheticCity, df: DataFrame
) -> None:
    with pytest.raises(ct.ConfigError, match="CROWDTALLY_NOT_SET") as error:
        cts.analyze(
            df, city.geography, config(city), key=distributed.KeyFromEnv("CROWDTALLY_NOT_SET")
        )
    assert error.value.field == "key"
    assert isinstance(error.value.__cause__, PythonException)


def test_a_shipped_key_works_and_another_key_is_refused(
    city: synth.SyntheticCity, df: DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(city)
    shipped = cts.analyze(df, city.geography, cfg, key=distributed.ShipKey())
    assert_same([ct.analyze(pa.table(city.pings), city.geography, cfg)], [shipped])
    other = ct.Config(key="another key of at least 16 bytes", period=cfg.period)
    with pytest.raises(ct.ConfigError, match="driver's key") as error:
        cts.analyze(df, city.geography, other)
    assert error.value.field == "key"


def single_table_in_spark_form(table: pa.Table) -> pa.Table:
    """A single run's devices or visits table as Spark gives it back: pseudonyms as
    signed 64 bits, other unsigned counts as long, dictionaries as text, times in us."""
    columns = []
    for column in table.columns:
        if column.type == pa.uint64():
            column = column.cast(pa.int64(), safe=False)
        elif pa.types.is_unsigned_integer(column.type):
            column = column.cast(pa.int64())
        elif pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        elif pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("us", tz=column.type.tz))
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def spark_rows(frame: DataFrame, order: list[str]) -> list[tuple[Any, ...]]:
    table = frame.toArrow()
    return sorted(zip(*(table.column(name).to_pylist() for name in order), strict=True))


@pytest.mark.parametrize("with_period", [True, False])
def test_profile_and_visits_on_spark_equal_a_single_run(
    city: synth.SyntheticCity, df: DataFrame, with_period: bool
) -> None:
    cfg = config(city, with_period=with_period)
    study = ct.Study(city.geography, cfg)
    for name, frame, single in [
        ("devices", cts.profile(df, city.geography, cfg, partitions=3), study.profile),
        ("visits", cts.visits(df, city.geography, cfg, partitions=3), study.visits),
    ]:
        expected = single_table_in_spark_form(pa.table(single(pa.table(city.pings))))
        assert frame.columns == expected.column_names, name
        got = spark_rows(frame, expected.column_names)
        want = sorted(
            zip(*(expected.column(n).to_pylist() for n in expected.column_names), strict=True)
        )
        assert len(want) > 100, name
        assert got == want, name


def test_pseudonyms_of_the_profile_read_back_as_the_single_run(
    city: synth.SyntheticCity, df: DataFrame
) -> None:
    cfg = config(city)
    devices = cts.profile(df, city.geography, cfg, partitions=2).toArrow()
    pseudonyms = devices.column("device").cast(pa.uint64(), safe=False)
    single = pa.table(ct.Study(city.geography, cfg).profile(pa.table(city.pings))).column("device")
    assert sorted(pseudonyms.to_pylist()) == sorted(single.to_pylist())
    assert max(single.to_pylist()) >= 2**63  # some pseudonyms need the reinterpretation
