"""The same release on a Spark cluster (``pip install 'crowdtally[spark]'``; Spark 4 needs
Java 17 or later).

``crowdtally.spark.analyze(df, geography, config, ...)`` takes the same release arguments
as ``crowdtally.analyze`` and gives the same ``Release``, table and report, computed by
the executors::

    df.mapInArrow(map)                    raw pings -> pseudonymous pings (no raw id)
      .repartition(partitions, "device")  every ping of a device in one partition
      .mapInArrow(reduce)                 whole devices -> additive partials
      .groupBy(keys).sum(values)          partials of all reducers
    finish on the driver                  disclosure control or noise, extrapolation,
                                          report, ledger

``profile`` and ``visits`` give the per-device microdata of ``crowdtally.profile`` and
``crowdtally.visits`` as lazy DataFrames (the same first step, each reducer's devices).

When the configuration gives no period, a first pass over ``df`` finds it (the data's
span, §1.4): give the period to save that pass. Raw subscriber ids never leave the first
step; the key never travels with the job unless ``key=ShipKey()`` says so. By default the
executors read it from the environment variable ``CROWDTALLY_KEY`` (``KeyFromEnv``);
``KeyFromFile(path)`` reads it from a file on every executor. Each executor checks that
its key is the driver's.

Executors need crowdtally installed (a venv-pack archive or an image; see the
project's docs/SPARK.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import crowdtally._crowdtally as native
from crowdtally._crowdtally import (
    DP,
    Config,
    Engine,
    Geography,
    Plan,
    ReleaseSpec,
    Study,
    finish_partials,
)
from crowdtally.distributed import (
    PARTIAL_KEYS,
    PARTIAL_VALUES,
    KeyFromEnv,
    KeySource,
    map_part,
    profile_part,
    reduce_part,
    resolve_key,
    scan_part,
    schemas,
)
from crowdtally.release import Release

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark import Broadcast
    from pyspark.sql import DataFrame

__all__ = ["analyze", "profile", "releases", "visits"]


def _spark_schema(arrow: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow)


def _output_schema(df: DataFrame, arrow: pa.Schema) -> pa.Schema:
    """The Arrow schema Spark expects back from a ``mapInArrow`` whose schema is
    ``arrow``: with the session's choice of large string types and its time zone."""
    from pyspark.sql.pandas.types import to_arrow_schema

    conf = df.sparkSession.conf
    large = conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false")
    return to_arrow_schema(
        _spark_schema(arrow),
        timezone=conf.get("spark.sql.session.timeZone") or "UTC",
        prefers_large_types=large == "true",
    )


def _reducer_engine(memory_limit: int | str | None) -> Engine:
    """The settings of a reducer on an executor: the task's cores, a spill directory of
    Spark's, and the given memory budget."""
    from pyspark import TaskContext

    context = TaskContext.get()
    threads = context.cpus() if context is not None else 1
    local_dirs = os.environ.get("SPARK_LOCAL_DIRS", "").split(",")
    spill_dir = next((d for d in local_dirs if d), tempfile.gettempdir())
    return Engine(threads=threads, memory_limit=memory_limit, spill_dir=spill_dir)


_WORKER_ERROR = re.compile(r"^crowdtally\.(\w+Error): (.*)$", re.MULTILINE)
_FIELD = re.compile(r"`([^`]+)`")


@contextlib.contextmanager
def _worker_errors() -> Iterator[None]:
    """Raises a crowdtally error that an executor raised as itself (with its `.field`),
    rather than as Spark's wrapper of it."""
    from pyspark.errors import PythonException

    try:
        yield
    except PythonException as error:
        found = _WORKER_ERROR.findall(str(error))
        kind = getattr(native, found[-1][0], None) if found else None
        if kind is None or not issubclass(kind, native.CrowdtallyError):
            raise
        message = found[-1][1]
        raised = kind(message)
        field = _FIELD.search(message)
        raised.field = field.group(1) if field else None
        raise raised from error


@dataclass
class _Grouped:
    """The first half of a distributed run on Spark: the pings mapped and grouped by
    device, and what the reducers and the driver's finish need."""

    study: Study
    plan: Plan
    input_kind: str | None
    shipped: Any
    geography: Broadcast[Geography]
    by_device: DataFrame


def _grouped(
    df: DataFrame,
    geography: Geography,
    config: Config,
    specs: list[ReleaseSpec | Mapping[str, Any]] | None,
    key: KeySource | None,
    partitions: int | None,
    columns: Mapping[str, str] | None,
) -> _Grouped:
    """Checks everything on the driver (the releases with the ledger included, the
    DataFrame's schema), scans for the period when there is none, and gives the mapped
    pings repartitioned by device (lazily)."""
    study = Study(geography, config, columns=dict(columns) if columns is not None else None)
    plan = Plan(study, specs)
    input_kind = plan.input_kind(study, _arrow_schema(df))
    shipped = (key if key is not None else KeyFromEnv()).for_workers(config)
    shared = df.sparkSession.sparkContext.broadcast(geography)
    all_schemas = schemas()

    if plan.needs_scan():
        scan_plan = plan

        def scan(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            yield from scan_part(scan_plan, shared.value, resolve_key(shipped), batches)

        with _worker_errors():
            spans = df.mapInArrow(scan, _spark_schema(all_schemas["span"])).collect()
        firsts = [row["first"] for row in spans if row["first"] is not None]
        lasts = [row["last"] for row in spans if row["last"] is not None]
        plan = plan.with_span(min(firsts, default=None), max(lasts, default=None))

    final_plan = plan
    pseudonymous = _output_schema(df, all_schemas["pseudonymous"])

    def map_pings(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        key_bytes = resolve_key(shipped)
        for batch in map_part(final_plan, shared.value, key_bytes, batches):
            yield batch.cast(pseudonymous)

    count = partitions or int(df.sparkSession.conf.get("spark.sql.shuffle.partitions") or 200)
    mapped = df.mapInArrow(map_pings, _spark_schema(all_schemas["pseudonymous"]))
    return _Grouped(
        study, final_plan, input_kind, shipped, shared, mapped.repartition(count, "device")
    )


def releases(
    df: DataFrame,
    geography: Geography,
    config: Config,
    specs: Sequence[ReleaseSpec | Mapping[str, Any]],
    *,
    key: KeySource | None = None,
    partitions: int | None = None,
    columns: Mapping[str, str] | None = None,
    reducer_memory: int | str | None = None,
) -> list[Release]:
    """Several releases of the pings of a Spark DataFrame, read once: the releases
    ``crowdtally.Study(geography, config).releases(pings, specs)`` gives.

    ``key`` says where the executors find the key (default ``KeyFromEnv()``, the
    environment variable ``CROWDTALLY_KEY``). ``partitions`` is the number of reducer
    partitions (default ``spark.sql.shuffle.partitions``); ``columns`` maps roles to
    column names as in ``Study``; ``reducer_memory`` is each reducer's memory budget
    (default: crowdtally's default budget, which spills beyond it)."""
    spec_list = list(specs)
    # The releases are checked, the ledger included, before any data are read.
    grouped = _grouped(df, geography, config, spec_list, key, partitions, columns)
    plan, shipped, shared = grouped.plan, grouped.shipped, grouped.geography
    partials = _output_schema(df, schemas()["partials"])

    def reduce_pings(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        engine = _reducer_engine(reducer_memory)
        key_bytes = resolve_key(shipped)
        for batch in reduce_part(plan, shared.value, key_bytes, batches, engine):
            yield batch.cast(partials)

    from pyspark.sql import functions

    reduced = grouped.by_device.mapInArrow(reduce_pings, _spark_schema(schemas()["partials"]))
    summed = reduced.groupBy(*PARTIAL_KEYS).agg(
        *(functions.sum(name).alias(name) for name in PARTIAL_VALUES)
    )
    with _worker_errors():
        table = summed.toArrow()
    shared.unpersist()
    return finish_partials(grouped.study, plan, spec_list, [table], grouped.input_kind)


def _spark_form(schema: pa.Schema) -> pa.Schema:
    """``schema`` in types Spark has: unsigned integers as signed 64-bit (a pseudonym's
    64 bits reinterpreted), dictionaries as their values, times in microseconds."""
    import pyarrow as pa

    def form(kind: pa.DataType) -> pa.DataType:
        if pa.types.is_unsigned_integer(kind):
            return pa.int64()
        if pa.types.is_dictionary(kind):
            return form(kind.value_type)
        if pa.types.is_timestamp(kind):
            return pa.timestamp("us", tz=kind.tz)
        return kind

    return pa.schema([field.with_type(form(field.type)) for field in schema])


def _in_spark_form(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` cast to ``schema`` (the session's form of ``_spark_form``), 64-bit
    unsigned values reinterpreted as signed, not checked for range."""
    import pyarrow as pa

    columns = [
        column.cast(pa.int64(), safe=False) if column.type == pa.uint64() else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names).cast(schema)


def _microdata(
    table: Literal["devices", "visits"],
    df: DataFrame,
    geography: Geography,
    config: Config,
    key: KeySource | None,
    partitions: int | None,
    columns: Mapping[str, str] | None,
    reducer_memory: int | str | None,
) -> DataFrame:
    """The devices or visits table of the pings of ``df`` as a (lazy) DataFrame."""
    grouped = _grouped(df, geography, config, None, key, partitions, columns)
    plan, shipped, shared = grouped.plan, grouped.shipped, grouped.geography
    form = _spark_form(schemas()[table])
    output = _output_schema(df, form)

    def reduce_pings(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        engine = _reducer_engine(reducer_memory)
        key_bytes = resolve_key(shipped)
        batch = profile_part(plan, shared.value, key_bytes, batches, engine, table)
        yield _in_spark_form(batch, output)

    return grouped.by_device.mapInArrow(reduce_pings, _spark_schema(form))


def profile(
    df: DataFrame,
    geography: Geography,
    config: Config,
    *,
    key: KeySource | None = None,
    partitions: int | None = None,
    columns: Mapping[str, str] | None = None,
    reducer_memory: int | str | None = None,
) -> DataFrame:
    """Per-device microdata (method §4) of the pings of a Spark DataFrame, as a lazy
    DataFrame: the rows ``crowdtally.profile`` gives, each device's in the partition
    that held its pings. ``device`` is a Spark ``long``: the pseudonym's 64 bits read as
    signed (cast to ``uint64`` without a range check to get the pseudonym back); the
    counts are ``long`` too. Pseudonymous, not anonymous: never publish it.

    The configuration is checked (and the period scanned for when there is none) here;
    an executor's error is raised by the action that computes the DataFrame. Arguments
    as for ``releases``."""
    return _microdata("devices", df, geography, config, key, partitions, columns, reducer_memory)


def visits(
    df: DataFrame,
    geography: Geography,
    config: Config,
    *,
    key: KeySource | None = None,
    partitions: int | None = None,
    columns: Mapping[str, str] | None = None,
    reducer_memory: int | str | None = None,
) -> DataFrame:
    """Visits (method §5) of the pings of a Spark DataFrame, as a lazy DataFrame: the
    rows ``crowdtally.visits`` gives, with ``device`` as in ``profile``. Pseudonymous,
    not anonymous: never publish it."""
    return _microdata("visits", df, geography, config, key, partitions, columns, reducer_memory)


def analyze(
    df: DataFrame,
    geography: Geography,
    config: Config,
    bucket: str = "period",
    level: str | None = None,
    classes: str | Sequence[str] | None = None,
    subscribers: Mapping[str, int] | None = None,
    roaming_factors: Mapping[str, float] | None = None,
    *,
    roll_up: bool = True,
    privacy: str | DP | None = None,
    allow_differencing: bool = False,
    key: KeySource | None = None,
    partitions: int | None = None,
    columns: Mapping[str, str] | None = None,
    reducer_memory: int | str | None = None,
) -> Release:
    """The release of the pings of a Spark DataFrame: what ``crowdtally.analyze`` gives
    for the same pings and arguments, computed by the executors. See ``releases`` for
    ``key``, ``partitions``, ``columns`` and ``reducer_memory``."""
    spec = ReleaseSpec(
        bucket,
        level,
        classes,
        subscribers,
        roaming_factors,
        roll_up=roll_up,
        privacy=privacy,
        allow_differencing=allow_differencing,
    )
    (release,) = releases(
        df,
        geography,
        config,
        [spec],
        key=key,
        partitions=partitions,
        columns=columns,
        reducer_memory=reducer_memory,
    )
    return release


def _arrow_schema(df: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)
