"""Runs larger than memory: `threads=`, `memory_limit=`, `spill_dir=` and `progress=`.

With a tiny budget (1 MiB on 16 threads) the pings are spilled to disk in a directory of
their own inside `spill_dir` and analysed shard by shard: analyze(), profile() and
visits() give exactly what the in-memory run gives, and the spill directory is emptied
when the run ends, whether it succeeds, fails or is interrupted (by the progress
callable, by the batch iterator, or by Ctrl-C). Pings may also come as an iterator of
Arrow batches or as Parquet files. Progress events are ordered and add up; an exception
raised by the progress callable or by the batch iterator is raised as itself;
`progress=True` shows a tqdm bar, or warns without tqdm; invalid options are
ConfigErrors naming the option; and spill files never hold a raw subscriber id.
"""

from __future__ import annotations

import _thread
import itertools
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import hypothesis.strategies as st
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given, settings

import crowdtally as ct
from crowdtally import synth

TINY: dict[str, Any] = {"memory_limit": "1MiB", "threads": 16}
"""A budget far below the pings (about 56,000 of them): they are spilled to disk."""

BATCH_ROWS = 10_000
"""Rows per batch where pings come in batches."""

BUCKET = "day"


# -- the synthetic city, and what the in-memory run gives ----------------------------------


@pytest.fixture(scope="module")
def city() -> synth.SyntheticCity:
    return synth.scenario(scale=0.001, days=5, seed=3)


@pytest.fixture(scope="module")
def pings(city: synth.SyntheticCity) -> Any:
    """The city's pings as one pyarrow table (one batch)."""
    table = pa.table(city.pings).combine_chunks()
    assert table.num_rows > 5 * BATCH_ROWS
    return table


@dataclass(frozen=True)
class Expected:
    """What the in-memory run (default budget) gives."""

    release: Any
    """The release table, as a pyarrow table."""
    report: dict[str, Any]
    devices: list[dict[str, Any]]
    """profile(), as rows."""
    visits: list[dict[str, Any]]
    """visits(), as rows."""


@pytest.fixture(scope="module")
def expected(city: synth.SyntheticCity, pings: Any) -> Expected:
    release = ct.analyze(pings, city.geography, city.config(), bucket=BUCKET)
    expected = Expected(
        release=release.to_arrow(),
        report=release.report,
        devices=ct.profile(pings, city.geography, city.config()).to_arrow().to_pylist(),
        visits=ct.visits(pings, city.geography, city.config()).to_arrow().to_pylist(),
    )
    assert expected.release.num_rows > 10
    assert expected.devices
    assert expected.visits
    return expected


def analyze(city: synth.SyntheticCity, pings: Any, **options: Any) -> ct.Release:
    return ct.analyze(pings, city.geography, city.config(), bucket=BUCKET, **options)


def assert_same_release(release: ct.Release, expected: Expected) -> None:
    """The same table (schema and values) and the same report."""
    table = release.to_arrow()
    assert table.schema == expected.release.schema
    assert table.equals(expected.release)
    assert release.report == expected.report


PER_DEVICE: dict[str, Callable[..., ct.Table]] = {"profile": ct.profile, "visits": ct.visits}
RUNS: dict[str, Callable[..., object]] = {"analyze": ct.analyze, **PER_DEVICE}
"""The entry points with a memory budget."""
ENTRY_POINTS: dict[str, Callable[..., object]] = {**RUNS, "prepare": ct.prepare}


def per_device_rows(expected: Expected, run: str) -> list[dict[str, Any]]:
    return expected.devices if run == "profile" else expected.visits


# -- the spill directory and progress events -----------------------------------------------


def files_under(root: Path) -> dict[Path, bytes]:
    """Every file under `root` (recursively) and its bytes."""
    return {path.relative_to(root): path.read_bytes() for path in root.rglob("*") if path.is_file()}


class Recorder:
    """A progress callable that keeps every event.

    At the events of `stage` it keeps what the spill directory holds, until that is
    something: at the first `analyze` event every ping has been read, and spilled if it
    had to be. Given `raise_at`, it raises it at the first event of `stage`."""

    def __init__(
        self,
        spill_dir: Path | None = None,
        *,
        raise_at: BaseException | None = None,
        stage: str = "analyze",
    ) -> None:
        self.spill_dir = spill_dir
        self.raise_at = raise_at
        self.stage = stage
        self.events: list[ct.Progress] = []
        self.spilled: dict[Path, bytes] | None = None

    def __call__(self, event: ct.Progress) -> None:
        self.events.append(event)
        if not self.spilled and self.spill_dir is not None and event.stage == self.stage:
            self.spilled = files_under(self.spill_dir)
        if self.raise_at is not None and event.stage == self.stage:
            raise self.raise_at

    def stages(self) -> list[str]:
        return [event.stage for event in self.events]


def assert_spilled_and_removed(recorder: Recorder, spill_dir: Path) -> None:
    """Spill files were made in a directory of their own inside `spill_dir`, and
    nothing is left of them."""
    assert recorder.spilled, "nothing was spilled"
    (own,) = {path.parts[0] for path in recorder.spilled}
    assert own.startswith("crowdtally-spill-")
    assert all(len(path.parts) == 2 for path in recorder.spilled)
    assert list(spill_dir.iterdir()) == []


def increasing(values: list[int]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(values))


def assert_events_add_up(events: list[ct.Progress], rows: int, rows_total: int | None) -> None:
    """Read events, then analyze events; counts never go back; all rows are read and
    every shard is done."""
    assert events
    stages = [event.stage for event in events]
    assert "read" in stages
    assert "analyze" in stages
    first_analyze = stages.index("analyze")
    assert set(stages[:first_analyze]) == {"read"}
    assert set(stages[first_analyze:]) == {"analyze"}
    reading, analysing = events[:first_analyze], events[first_analyze:]
    assert all(e.shards_total == 0 and e.shards_done == 0 for e in reading)
    assert increasing([e.rows_read for e in events])
    assert increasing([e.bytes_spilled for e in events])
    assert all(e.rows_total == rows_total for e in events)
    assert reading[-1].rows_read == rows
    assert all(e.rows_read == rows for e in analysing)
    total = analysing[0].shards_total
    assert total >= 1
    assert all(e.shards_total == total for e in analysing)
    assert analysing[0].shards_done == 0
    assert increasing([e.shards_done for e in analysing])
    assert analysing[-1].shards_done == total


# -- a tiny budget gives what memory gives --------------------------------------------------


def test_a_tiny_budget_spills_and_gives_the_in_memory_release(
    city: synth.SyntheticCity, pings: Any, expected: Expected, tmp_path: Path
) -> None:
    recorder = Recorder(tmp_path)
    release = analyze(city, pings, **TINY, spill_dir=tmp_path, progress=recorder)
    assert_same_release(release, expected)
    assert_spilled_and_removed(recorder, tmp_path)
    last = recorder.events[-1]
    assert last.bytes_spilled > 0
    assert last.shards_total > 16


def test_progress_events_of_a_spilling_run_are_ordered_and_add_up(
    city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    recorder = Recorder()
    analyze(city, pings, **TINY, spill_dir=tmp_path, progress=recorder)
    assert_events_add_up(recorder.events, pings.num_rows, rows_total=pings.num_rows)
    # Everything is spilled before the shards are analysed, and nothing after.
    spilled = recorder.events[recorder.stages().index("analyze")].bytes_spilled
    assert spilled > 0
    assert recorder.events[-1].bytes_spilled == spilled


def test_an_in_memory_run_spills_nothing_and_reports_its_progress(
    city: synth.SyntheticCity, pings: Any, expected: Expected, tmp_path: Path
) -> None:
    recorder = Recorder(tmp_path)
    release = analyze(city, pings, spill_dir=tmp_path, progress=recorder)
    assert_same_release(release, expected)
    assert_events_add_up(recorder.events, pings.num_rows, rows_total=pings.num_rows)
    assert all(event.bytes_spilled == 0 for event in recorder.events)
    assert recorder.spilled == {}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run", list(PER_DEVICE))
def test_profile_and_visits_with_a_tiny_budget_give_the_in_memory_rows(
    run: str, city: synth.SyntheticCity, pings: Any, expected: Expected, tmp_path: Path
) -> None:
    recorder = Recorder(tmp_path)
    table = PER_DEVICE[run](
        pings, city.geography, city.config(), **TINY, spill_dir=tmp_path, progress=recorder
    )
    assert table.to_arrow().to_pylist() == per_device_rows(expected, run)
    assert_spilled_and_removed(recorder, tmp_path)
    assert_events_add_up(recorder.events, pings.num_rows, rows_total=pings.num_rows)


@pytest.mark.parametrize("memory_limit", ["1 mib", "4GiB", "512MB", 1 << 20, 3_000_000])
def test_memory_limits_in_bytes_or_as_sizes_give_the_same_release(
    memory_limit: int | str,
    city: synth.SyntheticCity,
    pings: Any,
    expected: Expected,
    tmp_path: Path,
) -> None:
    release = analyze(city, pings, memory_limit=memory_limit, spill_dir=tmp_path)
    assert_same_release(release, expected)
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=5, deadline=None)
@given(memory_limit=st.integers(min_value=1 << 20, max_value=64 << 20), threads=st.integers(1, 16))
@example(memory_limit=1 << 20, threads=1)
def test_any_budget_and_any_number_of_threads_give_the_same_release(
    memory_limit: int, threads: int, city: synth.SyntheticCity, pings: Any, expected: Expected
) -> None:
    release = analyze(city, pings, memory_limit=memory_limit, threads=threads)
    assert_same_release(release, expected)


def test_the_default_spill_dir_is_the_system_temporary_directory(
    city: synth.SyntheticCity,
    pings: Any,
    expected: Expected,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    recorder = Recorder(tmp_path)
    release = analyze(city, pings, **TINY, progress=recorder)
    assert_same_release(release, expected)
    assert_spilled_and_removed(recorder, tmp_path)


# -- pings as an iterator of Arrow batches --------------------------------------------------


def record_batches(table: Any) -> Iterator[Any]:
    yield from table.to_batches(max_chunksize=BATCH_ROWS)


def tables(table: Any) -> Iterator[Any]:
    for start in range(0, table.num_rows, BATCH_ROWS):
        yield table.slice(start, BATCH_ROWS)


ITERATORS: dict[str, Callable[[Any], Any]] = {
    "generator of record batches": record_batches,
    "generator of tables": tables,
    "list of record batches": lambda table: table.to_batches(max_chunksize=BATCH_ROWS),
    "iterator of record batch readers": lambda table: iter(
        [pa.RecordBatchReader.from_batches(table.schema, table.to_batches(BATCH_ROWS))]
    ),
}


@pytest.mark.parametrize("source", list(ITERATORS))
def test_an_iterator_of_arrow_batches_gives_the_release_of_the_table(
    source: str, city: synth.SyntheticCity, pings: Any, expected: Expected, tmp_path: Path
) -> None:
    recorder = Recorder(tmp_path)
    release = analyze(city, ITERATORS[source](pings), **TINY, spill_dir=tmp_path, progress=recorder)
    assert_same_release(release, expected)
    assert_spilled_and_removed(recorder, tmp_path)
    if source.startswith("generator"):
        # Pulled one by one: one read event per batch, the total unknown.
        reads = [e.rows_read for e in recorder.events if e.stage == "read"]
        assert reads == [*range(BATCH_ROWS, pings.num_rows, BATCH_ROWS), pings.num_rows]
        assert all(event.rows_total is None for event in recorder.events)
        assert_events_add_up(recorder.events, pings.num_rows, rows_total=None)


@pytest.mark.parametrize("run", list(PER_DEVICE))
def test_profile_and_visits_take_a_generator_of_batches_with_a_tiny_budget(
    run: str, city: synth.SyntheticCity, pings: Any, expected: Expected, tmp_path: Path
) -> None:
    table = PER_DEVICE[run](
        record_batches(pings), city.geography, city.config(), **TINY, spill_dir=tmp_path
    )
    assert table.to_arrow().to_pylist() == per_device_rows(expected, run)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run", list(ENTRY_POINTS))
def test_an_empty_iterator_is_an_input_error_naming_pings(
    run: str, city: synth.SyntheticCity
) -> None:
    function = ENTRY_POINTS[run]

    def nothing() -> Iterator[Any]:
        yield from ()

    with pytest.raises(ct.InputError) as error:
        function(nothing(), city.geography, city.config())
    assert error.value.field == "pings"


@pytest.mark.parametrize(
    ("items", "found"),
    [
        ([1], "int"),
        (["not a batch"], "str"),
        ([{"subscriber": ["a"]}], "dict"),
        ([None], "None"),
    ],
)
def test_an_iterator_of_something_else_than_arrow_is_an_input_error_naming_pings(
    items: list[Any], found: str, city: synth.SyntheticCity
) -> None:
    with pytest.raises(ct.InputError, match=found) as error:
        analyze(city, iter(items))
    assert error.value.field == "pings"


def test_a_non_arrow_item_after_spilled_batches_is_an_input_error_and_removes_the_spill(
    city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    def batches_then_text() -> Iterator[Any]:
        yield from pings.to_batches(max_chunksize=3 * BATCH_ROWS)
        yield "not a batch"

    recorder = Recorder(tmp_path, stage="read")
    with pytest.raises(ct.InputError, match="str") as error:
        analyze(city, batches_then_text(), **TINY, spill_dir=tmp_path, progress=recorder)
    assert error.value.field == "pings"
    assert_spilled_and_removed(recorder, tmp_path)


class SourceBrokeError(Exception):
    """Raised by a batch generator."""


@pytest.mark.parametrize("exception", [SourceBrokeError("the source broke"), KeyboardInterrupt()])
def test_an_exception_raised_by_the_generator_propagates_as_itself(
    exception: BaseException, city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    def breaking() -> Iterator[Any]:
        yield from pings.slice(0, 3 * BATCH_ROWS).to_batches(max_chunksize=BATCH_ROWS)
        raise exception

    recorder = Recorder(tmp_path, stage="read")
    with pytest.raises(type(exception)) as error:
        analyze(city, breaking(), **TINY, spill_dir=tmp_path, progress=recorder)
    assert error.value is exception
    assert not isinstance(error.value, ct.CrowdtallyError)
    assert recorder.stages() == ["read"] * 3
    assert_spilled_and_removed(recorder, tmp_path)


# -- an exception of the progress callable, and Ctrl-C, stop the run -------------------------


@pytest.mark.parametrize("run", list(RUNS))
def test_keyboard_interrupt_from_the_progress_callable_stops_the_run_and_removes_the_spill(
    run: str, city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    recorder = Recorder(tmp_path, raise_at=KeyboardInterrupt())
    function = RUNS[run]
    with pytest.raises(KeyboardInterrupt) as error:
        function(
            pings, city.geography, city.config(), **TINY, spill_dir=tmp_path, progress=recorder
        )
    assert error.value is recorder.raise_at
    # Not called again once it raised.
    assert recorder.stages().count("analyze") == 1
    assert recorder.events[-1].stage == "analyze"
    assert_spilled_and_removed(recorder, tmp_path)


class StopError(Exception):
    """Raised by a progress callable."""


@pytest.mark.parametrize("run", list(ENTRY_POINTS))
def test_an_exception_of_the_progress_callable_while_reading_is_raised_as_itself(
    run: str, city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    function = ENTRY_POINTS[run]
    budget: dict[str, Any] = {} if run == "prepare" else {**TINY, "spill_dir": tmp_path}
    recorder = Recorder(tmp_path, raise_at=StopError("enough"), stage="read")
    batches = pings.to_batches(max_chunksize=2 * BATCH_ROWS)
    with pytest.raises(StopError) as error:
        function(batches, city.geography, city.config(), **budget, progress=recorder)
    assert error.value is recorder.raise_at
    assert recorder.stages() == ["read"]
    assert recorder.events[0].rows_read == 2 * BATCH_ROWS
    if run != "prepare":
        assert_spilled_and_removed(recorder, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_exception_of_the_progress_callable_halfway_through_the_shards_stops_them(
    city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    events: list[ct.Progress] = []

    def stop_halfway(event: ct.Progress) -> None:
        events.append(event)
        if event.stage == "analyze" and event.shards_done >= 3:
            raise StopError("halfway")

    with pytest.raises(StopError, match="halfway"):
        analyze(city, pings, **TINY, spill_dir=tmp_path, progress=stop_halfway)
    assert events[-1].shards_done < events[-1].shards_total
    assert sum(1 for e in events if e.stage == "analyze" and e.shards_done >= 3) == 1
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_without_a_progress_callable_stops_the_run_and_removes_the_spill(
    city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    # Ctrl-C while the core runs: it looks for signals between batches and shards, with no
    # Python code of the caller running (a table in memory, no progress callable).
    timer = threading.Timer(0.05, _thread.interrupt_main)

    def run_until_interrupted() -> None:
        analyze(city, pings, **TINY, spill_dir=tmp_path)
        timer.join()

    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as stopped:
            run_until_interrupted()
    finally:
        timer.cancel()
        timer.join()
    # Raised by the run itself, not after it, in the wait for the timer.
    innermost = traceback.extract_tb(stopped.tb)[-1]
    assert innermost.name == "analyze", innermost
    assert list(tmp_path.iterdir()) == []


# -- invalid options --------------------------------------------------------------------------


BAD_OPTIONS = [
    *(
        ("memory_limit", value)
        for value in (
            1000,
            (1 << 20) - 1,
            0,
            "1000KB",
            "lots",
            "1.5GiB",
            "-1",
            -5,
            2.5,
            True,
            False,
            [1 << 30],
            1 << 64,
        )
    ),
    *(("spill_dir", value) for value in (123, 4.5, ["/tmp"])),
]


@pytest.mark.parametrize("run", list(RUNS))
@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS)
def test_an_invalid_memory_limit_or_spill_dir_is_a_config_error_naming_it(
    run: str, option: str, value: Any, city: synth.SyntheticCity
) -> None:
    with pytest.raises(ct.ConfigError) as error:
        RUNS[run](city.pings, city.geography, city.config(), **{option: value})
    assert error.value.field == option


@pytest.mark.parametrize("run", list(RUNS))
def test_a_missing_spill_dir_is_a_config_error_naming_it_once_pings_spill(
    run: str, city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(ct.ConfigError, match="missing") as error:
        RUNS[run](pings, city.geography, city.config(), **TINY, spill_dir=missing)
    assert error.value.field == "spill_dir"
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_spill_dir_that_is_a_file_is_a_config_error_naming_it(
    city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    file = tmp_path / "file"
    file.write_text("not a directory")
    with pytest.raises(ct.ConfigError) as error:
        analyze(city, pings, **TINY, spill_dir=file)
    assert error.value.field == "spill_dir"
    assert file.read_text() == "not a directory"


@pytest.mark.parametrize("run", list(ENTRY_POINTS))
@pytest.mark.parametrize("progress", [42, "yes", [print]])
def test_a_progress_that_is_neither_a_flag_nor_callable_is_a_config_error_naming_it(
    run: str, progress: Any, city: synth.SyntheticCity
) -> None:
    function = ENTRY_POINTS[run]
    with pytest.raises(ct.ConfigError) as error:
        function(city.pings, city.geography, city.config(), progress=progress)
    assert error.value.field == "progress"


def test_prepare_takes_threads_and_progress_but_no_budget(
    city: synth.SyntheticCity, pings: Any
) -> None:
    alone = ct.prepare(pings, city.geography, city.config())
    recorder = Recorder()
    batches = pings.to_batches(max_chunksize=BATCH_ROWS)
    watched = ct.prepare(batches, city.geography, city.config(), threads=4, progress=recorder)
    assert watched.to_arrow().equals(alone.to_arrow())
    assert watched.report == alone.report
    # Only reading: prepare() keeps every ping in memory.
    assert set(recorder.stages()) == {"read"}
    assert recorder.events[-1].rows_read == pings.num_rows
    assert all(e.bytes_spilled == 0 and e.shards_total == 0 for e in recorder.events)
    with pytest.raises(TypeError, match="memory_limit"):
        ct.prepare(pings, city.geography, city.config(), **cast(Any, {"memory_limit": "1MiB"}))


@pytest.mark.parametrize("progress", [False, None])
def test_progress_false_or_none_calls_nothing(
    progress: bool | None, city: synth.SyntheticCity, pings: Any, expected: Expected
) -> None:
    assert_same_release(analyze(city, pings, progress=progress), expected)


# -- Parquet ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parquet_dir(pings: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pings.parquet` with every ping, and `part-{0,1,2}.parquet`, the pings cut in
    three."""
    root = tmp_path_factory.mktemp("parquet")
    pq.write_table(pings, root / "pings.parquet", row_group_size=BATCH_ROWS)
    size = -(-pings.num_rows // 3)
    for i in range(3):
        pq.write_table(pings.slice(i * size, size), root / f"part-{i}.parquet")
    return root


@pytest.mark.parametrize("budget", ["default", "tiny"])
@pytest.mark.parametrize("source", ["pings.parquet", "part-*.parquet"])
def test_parquet_input_knows_its_rows_and_gives_the_in_memory_release(
    source: str,
    budget: str,
    city: synth.SyntheticCity,
    expected: Expected,
    parquet_dir: Path,
    tmp_path: Path,
) -> None:
    files = sorted(parquet_dir.glob(source))
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
    recorder = Recorder(tmp_path)
    options: dict[str, Any] = TINY if budget == "tiny" else {}
    path = parquet_dir / source
    release = analyze(city, path, **options, spill_dir=tmp_path, progress=recorder)
    assert_same_release(release, expected)
    assert_events_add_up(recorder.events, rows, rows_total=rows)
    if budget == "tiny":
        assert_spilled_and_removed(recorder, tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- progress=True ----------------------------------------------------------------------------


def test_progress_true_shows_tqdm_bars_and_gives_the_same_release(
    city: synth.SyntheticCity,
    pings: Any,
    expected: Expected,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    release = analyze(city, pings, **TINY, spill_dir=tmp_path, progress=True)
    assert_same_release(release, expected)
    err = capsys.readouterr().err
    assert "read" in err
    assert "analyze" in err
    assert "100%" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("run", ["profile", "visits", "prepare"])
def test_progress_true_works_for_every_entry_point(
    run: str, city: synth.SyntheticCity, pings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ENTRY_POINTS[run](pings, city.geography, city.config(), progress=True)
    assert "read" in capsys.readouterr().err


@pytest.fixture
def no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """`from tqdm.auto import tqdm` fails as if tqdm were not installed."""
    monkeypatch.setitem(cast("dict[str, Any]", sys.modules), "tqdm.auto", None)


@pytest.mark.usefixtures("no_tqdm")
def test_progress_true_without_tqdm_warns_and_still_runs(
    city: synth.SyntheticCity,
    pings: Any,
    expected: Expected,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.warns(UserWarning, match="tqdm") as warned:
        release = analyze(city, pings, **TINY, spill_dir=tmp_path, progress=True)
    assert_same_release(release, expected)
    about_tqdm = [w for w in warned if not issubclass(w.category, ct.CrowdtallyWarning)]
    assert len(about_tqdm) == 1
    # The warning points at the caller's line.
    assert about_tqdm[0].filename == __file__
    assert "analyze" not in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("no_tqdm")
@pytest.mark.parametrize("run", ["profile", "visits", "prepare"])
def test_progress_true_without_tqdm_warns_at_the_callers_line(
    run: str, city: synth.SyntheticCity, pings: Any
) -> None:
    with pytest.warns(UserWarning, match="tqdm") as warned:
        ENTRY_POINTS[run](pings, city.geography, city.config(), progress=True)
    assert warned[0].filename == __file__


# -- privacy ----------------------------------------------------------------------------------


def id_encodings(raw_id: Any) -> list[bytes]:
    """The ways a raw id could be written: as text, and as an integer's bytes."""
    if isinstance(raw_id, int):
        return [
            str(raw_id).encode(),
            raw_id.to_bytes(8, "little"),
            raw_id.to_bytes(8, "big"),
        ]
    return [str(raw_id).encode()]


@pytest.mark.parametrize("ids", ["text", "integer"])
def test_spill_files_and_progress_events_hold_no_raw_subscriber_id(
    ids: str, city: synth.SyntheticCity, pings: Any, tmp_path: Path
) -> None:
    if ids == "integer":
        other = synth.scenario(scale=0.0005, days=3, seed=5, integer_ids=True)
        geography, config, table = other.geography, other.config(), pa.table(other.pings)
        assert pa.types.is_integer(table.schema.field("subscriber").type)
    else:
        geography, config, table = city.geography, city.config(), pings
    raw_ids = table.column("subscriber").unique().drop_null().to_pylist()
    assert len(raw_ids) > 100
    recorder = Recorder(tmp_path)
    ct.analyze(table, geography, config, **TINY, spill_dir=tmp_path, progress=recorder)
    assert recorder.spilled, "nothing was spilled"
    spilled = b"".join(recorder.spilled.values())
    assert len(spilled) > 10_000
    found = [i for i in raw_ids if any(code in spilled for code in id_encodings(i))]
    assert found == []
    names = " ".join(str(path) for path in recorder.spilled)
    assert [i for i in raw_ids if str(i) in names] == []
    for event in recorder.events:
        text = repr(event)
        assert text.startswith("Progress(stage=")
        assert [i for i in raw_ids if str(i) in text] == []
    assert list(tmp_path.iterdir()) == []
