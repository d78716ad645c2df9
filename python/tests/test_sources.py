"""Where pings come from: a Parquet path, a glob pattern, a list of paths or an Arrow
stream gives what the same pings in memory give, in prepare(), profile(), visits() and
analyze(); unreadable files are named; the number of threads changes nothing; and a
geography survives Geography.to_tables() and back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import crowdtally as ct
from conftest import KEY, geography_tables, raw_pings
from crowdtally import synth

# -- helpers -------------------------------------------------------------------------------


def field(error: pytest.ExceptionInfo[ct.InputError]) -> Any:
    """The `.field` of a raised crowdtally error."""
    return getattr(error.value, "field", "no field attribute")


def valid_file(path: Path) -> bytes:
    """Writes the conftest pings to `path` and returns the file's bytes."""
    pq.write_table(pa.table(raw_pings()), path)
    return path.read_bytes()


# -- the four entry points, each as a comparable result -----------------------------------


def _prepare(pings: Any, g: ct.Geography, c: ct.Config, **kwargs: Any) -> Any:
    prepared = ct.prepare(pings, g, c, **kwargs)
    return prepared.to_arrow(), prepared.report


def _profile(pings: Any, g: ct.Geography, c: ct.Config, **kwargs: Any) -> Any:
    return ct.profile(pings, g, c, **kwargs).to_arrow()


def _visits(pings: Any, g: ct.Geography, c: ct.Config, **kwargs: Any) -> Any:
    return ct.visits(pings, g, c, **kwargs).to_arrow()


def _analyze(pings: Any, g: ct.Geography, c: ct.Config, **kwargs: Any) -> Any:
    release = ct.analyze(pings, g, c, bucket="day", **kwargs)
    return release.to_arrow(), release.report


RUNS: dict[str, Callable[..., Any]] = {
    "prepare": _prepare,
    "profile": _profile,
    "visits": _visits,
    "analyze": _analyze,
}


def assert_same(expected: Any, actual: Any) -> None:
    """Tables equal (schema and values) and reports equal."""
    if isinstance(expected, tuple):
        assert actual[1] == expected[1]
        expected, actual = expected[0], actual[0]
    assert actual.schema == expected.schema
    assert actual.equals(expected)


# -- the synthetic city as one table, one file, and three files ----------------------------

PARTS = 3


@pytest.fixture(scope="module")
def city() -> synth.SyntheticCity:
    return synth.scenario(scale=0.001, days=7)


@pytest.fixture(scope="module")
def city_pings(city: synth.SyntheticCity) -> Any:
    """About 100,000 pings in one batch: large enough for several threads."""
    table = pa.table(city.pings).combine_chunks()
    assert table.num_rows > 4 * 16_384
    return table


@pytest.fixture(scope="module")
def city_dir(city_pings: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`one/pings.parquet` with every ping (written in batches of 30,000 rows), and
    `parts/part-{0,1,2}.parquet`, the pings cut in three."""
    root = tmp_path_factory.mktemp("city")
    (root / "one").mkdir()
    (root / "parts").mkdir()
    pq.write_table(city_pings, root / "one" / "pings.parquet", row_group_size=30_000)
    size = -(-city_pings.num_rows // PARTS)
    for i in range(PARTS):
        pq.write_table(city_pings.slice(i * size, size), root / "parts" / f"part-{i}.parquet")
    return root


def stream_of(table: Any, rows: int = 20_000) -> Any:
    """The table as an Arrow stream of batches of `rows` rows, made as they are pulled."""

    def batches() -> Iterator[Any]:
        for start in range(0, table.num_rows, rows):
            yield table.slice(start, rows).combine_chunks().to_batches()[0]

    return pa.RecordBatchReader.from_batches(table.schema, batches())


SOURCES: dict[str, Callable[[Path, Any], Any]] = {
    "path str": lambda root, _: str(root / "one" / "pings.parquet"),
    "pathlib.Path": lambda root, _: root / "one" / "pings.parquet",
    "glob str": lambda root, _: str(root / "parts" / "*.parquet"),
    "glob pathlib.Path": lambda root, _: root / "parts" / "part-*.parquet",
    "globs with ? and []": lambda root, _: [
        str(root / "parts" / "part-[01].parquet"),
        str(root / "parts" / "part-[!0-1].parq?et"),
    ],
    "list of str": lambda root, _: [str(p) for p in sorted((root / "parts").iterdir())],
    "list of pathlib.Path, any order": lambda root, _: sorted(
        (root / "parts").iterdir(), reverse=True
    ),
    "tuple of a glob and a path": lambda root, _: (
        str(root / "parts" / "part-[12].parquet"),
        root / "parts" / "part-0.parquet",
    ),
    "arrow stream": lambda _, table: stream_of(table),
}


@pytest.fixture(scope="module")
def expected(city: synth.SyntheticCity, city_pings: Any) -> dict[str, Any]:
    """Each entry point's result on the in-memory table."""
    return {name: run(city_pings, city.geography, city.config()) for name, run in RUNS.items()}


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("run", list(RUNS))
def test_every_source_gives_the_result_of_the_table_in_memory(
    run: str,
    source: str,
    city: synth.SyntheticCity,
    city_pings: Any,
    city_dir: Path,
    expected: dict[str, Any],
) -> None:
    pings = SOURCES[source](city_dir, city_pings)
    actual = RUNS[run](pings, city.geography, city.config())
    assert_same(expected[run], actual)


def test_overlapping_patterns_read_a_file_once_per_match(
    city: synth.SyntheticCity, city_dir: Path
) -> None:
    # "part-[01]" and "part-?" both match part-0 and part-1: they are read twice, and
    # their second reading is all duplicates.
    once = ct.prepare(str(city_dir / "parts" / "*.parquet"), city.geography, city.config())
    overlapping = [
        str(city_dir / "parts" / "part-[01].parquet"),
        str(city_dir / "parts" / "part-?.parquet"),
    ]
    twice = ct.prepare(overlapping, city.geography, city.config())
    assert twice.to_arrow().equals(once.to_arrow())
    assert twice.report["pings_kept"] == once.report["pings_kept"]
    assert twice.report["pings_read"] > once.report["pings_read"]


def test_the_conftest_pings_from_parquet(
    geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    # Text times, a null subscriber and one of each cleaning reason, through Parquet.
    table = pa.table(raw_pings())
    path = tmp_path / "raw.parquet"
    pq.write_table(table, path)
    for run in RUNS.values():
        assert_same(run(table, geography, config), run(path, geography, config))


# -- Arrow streams are pulled as the run goes ---------------------------------------------


def test_a_stream_is_pulled_batch_by_batch_and_left_at_the_first_error(
    geography: ct.Geography, config: ct.Config
) -> None:
    # Batches without a `ts` column: the run stops at the first one, where a stream read
    # whole before the run would be pulled to its end first.
    first = pa.table(raw_pings()).drop_columns(["ts"]).to_batches()[0]
    pulled: list[int] = []

    def batches() -> Iterator[Any]:
        for i in range(5):
            pulled.append(i)
            yield first

    stream = pa.RecordBatchReader.from_batches(first.schema, batches())
    with pytest.raises(ct.InputError) as error:
        ct.prepare(stream, geography, config)
    assert field(error) == "ts"
    assert len(pulled) <= 1


def test_a_stream_is_read_to_its_end(geography: ct.Geography, config: ct.Config) -> None:
    table = pa.table(raw_pings())
    pulled: list[int] = []

    def batches() -> Iterator[Any]:
        for i in range(table.num_rows):
            pulled.append(i)
            yield table.slice(i, 1).to_batches()[0]

    stream = pa.RecordBatchReader.from_batches(table.schema, batches())
    assert_same(_prepare(table, geography, config), _prepare(stream, geography, config))
    assert pulled == list(range(table.num_rows))


def test_an_error_raised_by_the_stream_reaches_the_caller(
    geography: ct.Geography, config: ct.Config
) -> None:
    table = pa.table(raw_pings())

    def batches() -> Iterator[Any]:
        yield table.to_batches()[0]
        raise RuntimeError("the source broke")

    stream = pa.RecordBatchReader.from_batches(table.schema, batches())
    with pytest.raises(ct.CrowdtallyError, match="the source broke"):
        ct.prepare(stream, geography, config)


# -- unreadable files ----------------------------------------------------------------------


@pytest.mark.parametrize("run", list(RUNS))
def test_a_glob_that_matches_nothing_names_the_pattern(
    run: str, geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    pattern = tmp_path / "nothing-*.parquet"
    for pings in (str(pattern), pattern):
        with pytest.raises(ct.InputError, match="matches no file") as error:
            RUNS[run](pings, geography, config)
        assert field(error) == str(pattern)
        assert str(pattern) in str(error.value)
    # Also after a pattern that does match: every pattern is expanded before any file
    # is read.
    valid_file(tmp_path / "raw.parquet")
    with pytest.raises(ct.InputError, match="matches no file") as error:
        RUNS[run]([str(tmp_path / "raw*"), str(pattern)], geography, config)
    assert field(error) == str(pattern)


@pytest.mark.parametrize("run", list(RUNS))
def test_a_missing_file_is_named(
    run: str, geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    path = tmp_path / "no-such-file.parquet"
    for pings in (str(path), path, [path]):
        with pytest.raises(ct.InputError) as error:
            RUNS[run](pings, geography, config)
        assert str(path) in str(error.value)
        assert field(error) == str(path)


CUTS: dict[str, Callable[[int], int]] = {
    "half": lambda n: n // 2,
    "most": lambda n: n * 9 // 10,
    "all but the last byte": lambda n: n - 1,
    "the magic only": lambda _: 4,
    "nothing": lambda _: 0,
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_truncated_file_is_named(
    cut: str, geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    whole = valid_file(tmp_path / "whole.parquet")
    path = tmp_path / "cut.parquet"
    path.write_bytes(whole[: CUTS[cut](len(whole))])
    with pytest.raises(ct.InputError) as error:
        ct.prepare(path, geography, config)
    assert str(path) in str(error.value)
    assert field(error) == str(path)


def test_a_file_that_is_not_parquet_is_named(
    geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    path = tmp_path / "pings.parquet"
    path.write_text("subscriber,ts,lat,lon\n206010000000001,1782892800,50.83,3.27\n")
    with pytest.raises(ct.InputError, match="Parquet") as error:
        ct.analyze(str(path), geography, config)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("run", list(RUNS))
def test_a_file_without_ts_names_the_file_and_the_column(
    run: str, geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    path = tmp_path / "no-ts.parquet"
    pq.write_table(pa.table(raw_pings()).drop_columns(["ts"]), path)
    with pytest.raises(ct.InputError) as error:
        RUNS[run](path, geography, config)
    assert field(error) == "ts"
    assert str(path) in str(error.value)
    # The user's name for the column.
    with pytest.raises(ct.InputError) as error:
        RUNS[run](path, geography, config, columns={"ts": "event_time"})
    assert field(error) == "event_time"
    assert str(path) in str(error.value)


def _empty_without_ts(kind: str, tmp_path: Path) -> Any:
    empty = pa.table(raw_pings()).drop_columns(["ts"]).slice(0, 0)
    if kind == "record batch":
        return pa.RecordBatch.from_pylist([], schema=empty.schema)
    if kind == "table":
        return empty  # a table of no batches
    if kind == "arrow stream":
        return pa.RecordBatchReader.from_batches(empty.schema, [])
    path = tmp_path / "empty-no-ts.parquet"
    pq.write_table(empty, path)
    return path


@pytest.mark.parametrize("kind", ["record batch", "table", "arrow stream", "parquet file"])
def test_pings_without_rows_are_still_checked_for_their_columns(
    kind: str, geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    # A schema error does not wait for a row, whatever holds the pings: an empty record
    # batch without `ts` is an error, so are an empty table, stream or file.
    pings = _empty_without_ts(kind, tmp_path)
    with pytest.raises(ct.InputError) as error:
        ct.prepare(pings, geography, config)
    assert field(error) == "ts"
    if isinstance(pings, Path):
        assert str(pings) in str(error.value)


def test_a_column_of_a_wrong_type_names_the_file_and_the_column(
    geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    table = pa.table(raw_pings())
    path = tmp_path / "float-ts.parquet"
    pq.write_table(table.set_column(1, "ts", pa.array([1.5] * table.num_rows)), path)
    with pytest.raises(ct.InputError, match="Float64") as error:
        ct.prepare(path, geography, config)
    assert field(error) == "ts"
    assert str(path) in str(error.value)


def test_glob_matches_are_read_in_sorted_order_and_lists_as_given(
    geography: ct.Geography, config: ct.Config, tmp_path: Path
) -> None:
    # Two bad files: the error names the one read first.
    no_ts = pa.table(raw_pings()).drop_columns(["ts"])
    for name in ("b-2.parquet", "c-3.parquet", "a-1.parquet"):
        pq.write_table(no_ts, tmp_path / name)
    with pytest.raises(ct.InputError) as error:
        ct.prepare(str(tmp_path / "*.parquet"), geography, config)
    assert str(tmp_path / "a-1.parquet") in str(error.value)
    listed = [tmp_path / "c-3.parquet", tmp_path / "a-1.parquet"]
    with pytest.raises(ct.InputError) as error:
        ct.prepare(listed, geography, config)
    assert str(tmp_path / "c-3.parquet") in str(error.value)


# -- threads -----------------------------------------------------------------------------


@pytest.mark.parametrize("run", list(RUNS))
def test_threads_change_nothing(
    run: str, city: synth.SyntheticCity, city_pings: Any, city_dir: Path
) -> None:
    g, c = city.geography, city.config()
    for pings in (lambda: city_pings, lambda: city_dir / "one" / "pings.parquet"):
        one = RUNS[run](pings(), g, c, threads=1)
        assert_same(one, RUNS[run](pings(), g, c, threads=2))
        assert_same(one, RUNS[run](pings(), g, c, threads=0))


def test_negative_threads_is_a_config_error_naming_threads(
    geography: ct.Geography, config: ct.Config
) -> None:
    # Like every other invalid parameter (`k=-1`, `resolution=-3`): a ConfigError with
    # its field, not a bare OverflowError.
    with pytest.raises(ct.ConfigError) as error:
        ct.prepare(raw_pings(), geography, config, threads=-1)
    assert getattr(error.value, "field", None) == "threads"


# -- Geography.to_tables() and back ------------------------------------------------------

TABLES = {
    "regions": ["region_id", "level", "parent_id", "population", "name"],
    "region_cells": ["cell", "region_id"],
    "zones": ["zone_id", "name", "category"],
    "zone_cells": ["zone_id", "cell"],
}


def test_to_tables_returns_the_four_tables() -> None:
    g = ct.Geography.from_tables(**geography_tables(), study_area=["kortrijk"])
    tables = g.to_tables()
    assert list(tables) == list(TABLES)
    for name, columns in TABLES.items():
        assert isinstance(tables[name], ct.Table)
        assert tables[name].column_names == columns
    regions = pa.table(tables["regions"])
    assert regions.column("region_id").to_pylist() == ["BE", "WVL", "kortrijk", "menen"]
    assert regions.column("parent_id").to_pylist() == [None, "BE", "WVL", "WVL"]
    # Inner regions' populations come back as the sums of their leaves.
    assert regions.column("population").to_pylist() == [113_000, 113_000, 80_000, 33_000]
    zones = pa.table(tables["zones"])
    assert zones.column("zone_id").to_pylist() == ["grote-markt", "station"]
    assert zones.column("name").to_pylist() == ["Grote Markt", "Station"]
    assert zones.column("category").to_pylist() == ["culture", "transport"]
    for name in ("region_cells", "zone_cells"):
        assert pa.table(tables[name]).schema.field("cell").type == pa.uint64()
    region_cells = pa.table(tables["region_cells"])
    assert region_cells.num_rows == len(geography_tables()["region_cells"]["cell"])


def geographies() -> dict[str, Callable[[], tuple[ct.Geography, Any, ct.Config]]]:
    """Geographies with pings to run on them."""

    def conftest() -> tuple[ct.Geography, Any, ct.Config]:
        g = ct.Geography.from_tables(**geography_tables(), study_area=["kortrijk"])
        return g, pa.table(raw_pings()), ct.Config(key=KEY)

    def synthetic() -> tuple[ct.Geography, Any, ct.Config]:
        city = synth.scenario(scale=0.001, days=7)
        return city.geography, pa.table(city.pings), city.config()

    return {"conftest": conftest, "synthetic": synthetic}


@pytest.mark.parametrize("name", list(geographies()))
def test_from_tables_of_to_tables_gives_the_geography_back(name: str) -> None:
    g, pings, config = geographies()[name]()
    back = ct.Geography.from_tables(
        **g.to_tables(), resolution=g.resolution, study_area=g.study_area
    )
    assert back.regions == g.regions
    assert back.zones == g.zones
    assert back.study_area == g.study_area
    assert back.resolution == g.resolution
    assert back.region_resolution == g.region_resolution
    assert repr(back) == repr(g)
    for run in ("prepare", "analyze"):
        assert_same(RUNS[run](pings, g, config), RUNS[run](pings, back, config))
    # And the tables of the rebuilt geography are the same tables.
    again = back.to_tables()
    for table_name, table in g.to_tables().items():
        assert pa.table(again[table_name]).equals(pa.table(table))


def write_geography(g: ct.Geography, directory: Path) -> dict[str, Any]:
    """Writes a geography's four tables as Parquet files; returns their paths."""
    paths: dict[str, Any] = {}
    for name, table in g.to_tables().items():
        paths[name] = directory / f"{name}.parquet"
        pq.write_table(pa.table(table), paths[name])
    return paths


@pytest.mark.parametrize("name", list(geographies()))
def test_from_tables_reads_parquet_paths(name: str, tmp_path: Path) -> None:
    g, pings, config = geographies()[name]()
    paths = write_geography(g, tmp_path)
    given: list[dict[str, Any]] = [
        {n: str(p) for n, p in paths.items()},
        dict(paths),
        # Paths and tables mixed.
        {**g.to_tables(), "regions": paths["regions"], "zone_cells": str(paths["zone_cells"])},
    ]
    for tables in given:
        back = ct.Geography.from_tables(**tables, resolution=g.resolution, study_area=g.study_area)
        assert back.regions == g.regions
        assert back.zones == g.zones
        assert repr(back) == repr(g)
        assert_same(RUNS["analyze"](pings, g, config), RUNS["analyze"](pings, back, config))


def test_a_bad_geography_file_is_named(tmp_path: Path) -> None:
    g = ct.Geography.from_tables(**geography_tables(), study_area=["kortrijk"])
    paths = write_geography(g, tmp_path)

    def from_files(**replaced: Path) -> ct.Geography:
        return ct.Geography.from_tables(**{**paths, **replaced}, study_area=["kortrijk"])

    missing = tmp_path / "no-such-file.parquet"
    with pytest.raises(ct.InputError) as error:
        from_files(zones=missing)
    assert field(error) == str(missing)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(paths["region_cells"].read_bytes()[:-1])
    with pytest.raises(ct.InputError, match="Parquet") as error:
        from_files(region_cells=truncated)
    assert field(error) == str(truncated)
    # A table without one of its columns: the error names the file and the column.
    no_level = tmp_path / "no-level.parquet"
    pq.write_table(pq.read_table(paths["regions"]).drop_columns(["level"]), no_level)
    with pytest.raises(ct.InputError) as error:
        from_files(regions=no_level)
    assert str(no_level) in str(error.value)
    assert "level" in str(field(error))
