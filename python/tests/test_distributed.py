"""crowdtally.distributed without an engine: the steps run over pyarrow partitions give
exactly the releases of a single run, and no raw id or key crosses a step."""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pytest

import crowdtally as ct
from crowdtally import distributed, synth

KEY = "distributed test key, 32 bytes!!"


@pytest.fixture(scope="module")
def city() -> synth.SyntheticCity:
    return synth.scenario(persons=1_500, days=5, seed=7)


def config(city: synth.SyntheticCity, *, with_period: bool = True, **fields: Any) -> ct.Config:
    """The city's configuration, with the first subscriber of the pings opted out."""
    period = city.config().period if with_period else None
    first = next(s for s in pa.table(city.pings).column("subscriber").to_pylist() if s)
    return ct.Config(key=KEY, period=period, opt_out=[first], **fields)


SPECS: list[dict[str, Any]] = [
    {"bucket": "period"},
    {"bucket": "day", "level": "province"},
    {"bucket": "hour"},
]
DP_SPEC = {
    "bucket": "day",
    "privacy": ct.DP(rho=1e18),
    "subscribers": {"kortrijk": 500},
    "roaming_factors": {"*": 3.0},
}


def parts_of(table: pa.Table, parts: int) -> list[list[pa.RecordBatch]]:
    """Rows spread over `parts` partitions by their place (a device's pings in several),
    each partition in two batches."""
    split: list[list[pa.RecordBatch]] = []
    for part in range(parts):
        chosen = table.take(list(range(part, table.num_rows, parts))).combine_chunks()
        half = chosen.num_rows // 2
        split.append(chosen.slice(0, half).to_batches() + chosen.slice(half).to_batches())
    return split


def mapped_and_routed(
    study: ct.Study,
    parts: list[list[pa.RecordBatch]],
    specs: list[Any] | None,
    reducers: int,
) -> tuple[distributed.Plan, list[list[pa.RecordBatch]]]:
    """The plan (scanned when it needs it) and the parts mapped and routed by device."""
    geography = study.geography
    key = KEY.encode()
    plan = distributed.Plan(study, specs)
    plan = pickle.loads(pickle.dumps(plan))  # what the workers are sent
    if plan.needs_scan():
        spans = [
            batch for part in parts for batch in distributed.scan_part(plan, geography, key, part)
        ]
        firsts = [s.column(0)[0].as_py() for s in spans if s.column(0)[0].is_valid]
        lasts = [s.column(1)[0].as_py() for s in spans if s.column(1)[0].is_valid]
        plan = plan.with_span(min(firsts, default=None), max(lasts, default=None))
    routed: list[list[pa.RecordBatch]] = [[] for _ in range(reducers)]
    for part in parts:
        for batch in distributed.map_part(plan, geography, key, part):
            devices = batch.column("device").to_pylist()
            slots = [0 if d is None else d % reducers for d in devices]
            for reducer in range(reducers):
                routed[reducer].append(batch.filter(pa.array([s == reducer for s in slots])))
    return plan, routed


def distributed_releases(
    study: ct.Study,
    parts: list[list[pa.RecordBatch]],
    specs: list[Any],
    reducers: int,
    schema: pa.Schema,
) -> list[ct.Release]:
    plan, routed = mapped_and_routed(study, parts, specs, reducers)
    partials = [
        batch
        for batches in routed
        for batch in distributed.reduce_part(plan, study.geography, KEY.encode(), batches)
    ]
    kind = plan.input_kind(study, schema)
    return distributed.finish_partials(study, plan, specs, partials, kind)


def assert_same(single: Iterable[ct.Release], split: Iterable[ct.Release]) -> None:
    for a, b in zip(single, split, strict=True):
        assert pa.table(a).equals(pa.table(b))
        assert a.report == b.report


@pytest.mark.parametrize("reducers", [1, 2, 7])
@pytest.mark.parametrize("with_period", [True, False])
def test_the_steps_give_the_single_run(
    city: synth.SyntheticCity, reducers: int, with_period: bool
) -> None:
    cfg = config(city, with_period=with_period)
    study = ct.Study(city.geography, cfg)
    specs = [*SPECS, DP_SPEC] if with_period else SPECS
    table = pa.table(city.pings)
    single = study.releases(table, specs)
    split = distributed_releases(study, parts_of(table, 3), specs, reducers, table.schema)
    assert_same(single, split)
    assert single[0].report["pings"]["dropped"]["opt_out"] > 0


def test_an_empty_input_gives_the_empty_releases(city: synth.SyntheticCity) -> None:
    cfg = config(city, with_period=False)
    study = ct.Study(city.geography, cfg)
    empty = pa.table(city.pings).slice(0, 0)
    single = study.releases(empty, SPECS)
    split = distributed_releases(study, [[], []], SPECS, 2, empty.schema)
    assert_same(single, split)


def test_nothing_that_crosses_a_step_holds_a_raw_id_or_the_key(
    city: synth.SyntheticCity,
) -> None:
    study = ct.Study(city.geography, config(city))
    plan = distributed.Plan(study, SPECS)
    table = pa.table(city.pings)
    ids = {str(s) for s in table.column("subscriber").to_pylist() if s is not None}
    sent = pickle.dumps(plan) + plan.to_json().encode() + pickle.dumps(study.geography)
    mapped = list(distributed.map_part(plan, study.geography, KEY.encode(), table.to_batches()))
    partials = list(distributed.reduce_part(plan, study.geography, KEY.encode(), mapped))
    for batch in [*mapped, *partials]:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        sent += sink.getvalue().to_pybytes()
    assert KEY.encode() not in sent
    assert b"206010000000003" not in sent
    assert [s for s in ids if s.encode() in sent] == []
    assert set(mapped[0].schema.names) == set(distributed.schemas()["pseudonymous"].names)


def test_a_worker_with_another_key_fails_at_once(city: synth.SyntheticCity) -> None:
    study = ct.Study(city.geography, config(city))
    plan = distributed.Plan(study, SPECS)
    with pytest.raises(ct.ConfigError) as error:
        distributed.Mapper(plan, study.geography, b"another key of at least 16 bytes")
    assert error.value.field == "key"
    assert "driver's key" in str(error.value)


def test_key_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDTALLY_TEST_KEY", KEY)
    assert distributed.KeyFromEnv("CROWDTALLY_TEST_KEY").resolve() == KEY.encode()
    monkeypatch.delenv("CROWDTALLY_TEST_KEY")
    with pytest.raises(ct.ConfigError, match="CROWDTALLY_TEST_KEY") as error:
        distributed.KeyFromEnv("CROWDTALLY_TEST_KEY").resolve()
    assert error.value.field == "key"
    path = tmp_path / "key"
    path.write_bytes(KEY.encode() + b"\n")
    assert distributed.KeyFromFile(str(path)).resolve() == KEY.encode()
    with pytest.raises(ct.ConfigError, match="cannot read"):
        distributed.KeyFromFile(str(tmp_path / "missing")).resolve()
    shipped = distributed.ShipKey().for_workers(ct.Config(key=KEY))
    assert KEY not in repr(shipped)
    # Shipping is explicit: the pickle holds the key, and a worker can use it.
    assert KEY.encode() in pickle.dumps(shipped)


def test_a_geography_pickles_whole(city: synth.SyntheticCity) -> None:
    again = pickle.loads(pickle.dumps(city.geography))
    assert repr(again) == repr(city.geography)
    for name, table in city.geography.to_tables().items():
        assert pa.table(again.to_tables()[name]).equals(pa.table(table))


def test_finish_refuses_other_specs_and_bad_partials(city: synth.SyntheticCity) -> None:
    study = ct.Study(city.geography, config(city))
    plan = distributed.Plan(study, SPECS)
    with pytest.raises(ct.ConfigError) as error:
        distributed.finish_partials(study, plan, [{"bucket": "week"}], [])
    assert error.value.field == "specs"
    broken = pa.table({"part": ["cell"], "table": pa.array([0], pa.int32())})
    with pytest.raises(ct.InputError) as input_error:
        distributed.finish_partials(study, plan, SPECS, [broken])
    assert input_error.value.field is not None


def test_a_plan_without_its_scan_cannot_map(city: synth.SyntheticCity) -> None:
    study = ct.Study(city.geography, config(city, with_period=False))
    plan = distributed.Plan(study, SPECS)
    assert plan.needs_scan()
    assert plan.period is None
    with pytest.raises(ct.ConfigError, match="scan") as error:
        distributed.Mapper(plan, study.geography, KEY)
    assert error.value.field == "period"
    scanned = plan.with_span(1_782_856_800, 1_782_943_200)
    assert scanned.period == ("2026-07-01", "2026-07-03")
    assert scanned.label == "2026Q3"


@pytest.mark.parametrize("with_period", [True, False])
def test_reducers_give_the_devices_and_visits_of_a_single_run(
    city: synth.SyntheticCity, with_period: bool
) -> None:
    cfg = config(city, with_period=with_period)
    study = ct.Study(city.geography, cfg)
    table = pa.table(city.pings)
    plan, routed = mapped_and_routed(study, parts_of(table, 2), None, 3)
    tables: list[tuple[Literal["devices", "visits"], Any]] = [
        ("devices", study.profile(table)),
        ("visits", study.visits(table)),
    ]
    for name, single in tables:
        parts = [
            pa.Table.from_batches(
                [distributed.profile_part(plan, study.geography, KEY.encode(), batches, None, name)]
            )
            for batches in routed
        ]
        together = pa.concat_tables(parts, promote_options="permissive")
        expected = pa.table(single)
        # Each reducer gives its devices in increasing pseudonym; a stable sort by device
        # keeps a device's visits in their order.
        together = together.take(pa.compute.sort_indices(together, [("device", "ascending")]))
        assert together.num_rows == expected.num_rows > 100
        for column in expected.column_names:
            assert together.column(column).to_pylist() == expected.column(column).to_pylist()


def test_a_plan_of_no_release_is_asked_for_without_specs(city: synth.SyntheticCity) -> None:
    study = ct.Study(city.geography, config(city))
    with pytest.raises(ct.ConfigError, match="at least one release") as error:
        distributed.Plan(study, [])
    assert error.value.field == "specs"
