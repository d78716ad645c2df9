"""The compiled core of crowdtally."""

import datetime
import os
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, final

import numpy as np
import numpy.typing as npt

from crowdtally.release import Release
from crowdtally.risk import Risk
from crowdtally.spend import Spend

__version__: str
RELEASE_COLUMNS: list[str]
RELEASE_LABEL_COLUMNS: list[str]
DWELL_BANDS: list[tuple[str, int]]
__all__ = [
    "DP",
    "DWELL_BANDS",
    "RELEASE_COLUMNS",
    "RELEASE_LABEL_COLUMNS",
    "Config",
    "ConfigError",
    "CrowdtallyError",
    "Engine",
    "Geography",
    "GeographyError",
    "InputError",
    "LedgerError",
    "Mapper",
    "PingBatches",
    "Plan",
    "Prepared",
    "Progress",
    "Reducer",
    "ReleaseSpec",
    "Scanner",
    "Scenario",
    "ShippedKey",
    "Study",
    "Table",
    "__version__",
    "_risk",
    "_spend",
    "distributed_schemas",
    "finish_partials",
    "pseudonymize",
    "read_parquet_table",
    "table_from_ipc",
    "table_to_ipc",
    "write_parquet",
]

class _ArrowStream(Protocol):
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

class _ArrowArray(Protocol):
    def __arrow_c_array__(self, requested_schema: object | None = None) -> object: ...

_Column = _ArrowArray | _ArrowStream | npt.NDArray[Any] | Sequence[Any]
_Table = _ArrowStream | _ArrowArray | Mapping[str, _Column] | Any
_Pings = (
    _Table
    | str
    | os.PathLike[str]
    | Sequence[str | os.PathLike[str]]
    | Iterable[_ArrowArray | _ArrowStream]
)
_Bytes = int | str
_ProgressArg = bool | Callable[[Progress], object] | None

@final
class Progress:
    """A progress event of a long run, passed to the ``progress=`` callable.

    ``stage`` is ``read`` (after every input batch) or ``analyze`` (as shards finish, and
    at least every 200 ms).
    """

    @property
    def stage(self) -> str:
        """`read` or `analyze`."""
    @property
    def rows_read(self) -> int:
        """Input rows read so far."""
    @property
    def rows_total(self) -> int | None:
        """Input rows in all, when known (Parquet files, tables in memory)."""
    @property
    def bytes_spilled(self) -> int:
        """Bytes written to spill files so far (compressed)."""
    @property
    def shards_done(self) -> int:
        """Shards done."""
    @property
    def shards_total(self) -> int:
        """Shards in all (0 while reading)."""

_Duration = int | str | datetime.timedelta
_Date = datetime.date | str

class CrowdtallyError(ValueError):
    """Base class of every crowdtally error (a ValueError)."""

    field: str | None

class ConfigError(CrowdtallyError):
    """An invalid configuration field; `.field` names it."""

class GeographyError(CrowdtallyError):
    """An invalid geography table or column; `.field` names it."""

class LedgerError(CrowdtallyError):
    """The privacy ledger refuses a release or cannot be used; `.field` names the file."""

class InputError(CrowdtallyError):
    """Unreadable input pings: a missing column or an unsupported type; `.field` names it."""

@final
class Config:
    """The parameters of a run, with the method's defaults.

    The key (at least 16 bytes) and the opt-out ids never appear in a repr, and a
    Config cannot be pickled.
    """

    def __new__(
        cls,
        *,
        key: bytes | str,
        period_label: str | None = None,
        tz: str = "Europe/Brussels",
        period: tuple[_Date, _Date] | Sequence[_Date] | None = None,
        resolution: int | None = None,
        home_country: str = "BE",
        opt_out: Iterable[str | bytes | int] | None = None,
        k: int | None = None,
        max_gap: _Duration | None = None,
        min_dwell: _Duration | None = None,
        min_nights: int | None = None,
        usual_env_min_days: int | None = None,
        ledger: str | os.PathLike[str] | None = None,
        budget: float | None = None,
    ) -> Config: ...
    @property
    def period_label(self) -> str | None:
        """The pseudonym period label, or None for the default (`YYYYQn` of the period start)."""
    @property
    def tz(self) -> str: ...
    @property
    def period(self) -> tuple[str, str] | None: ...
    @property
    def resolution(self) -> int | None:
        """The analysis resolution expected, or None: the geography's is used."""
    @property
    def home_country(self) -> str: ...
    @property
    def k(self) -> int: ...
    @property
    def max_gap(self) -> int: ...
    @property
    def min_dwell(self) -> int: ...
    @property
    def min_nights(self) -> int: ...
    @property
    def usual_env_min_days(self) -> int | None: ...
    @property
    def ledger(self) -> pathlib.Path | None:
        """The ledger file that records every release of a period, or None."""
    @property
    def budget(self) -> float | None:
        """The rho (zCDP) a period may spend on differentially private releases, or None."""
    @property
    def opt_out_count(self) -> int:
        """How many ids the opt-out list holds (the ids themselves are never shown)."""
    def to_dict(self) -> dict[str, Any]:
        """The parameters as a dict, without the key and the opt-out ids."""
    def __reduce__(self) -> tuple[Any, ...]:
        """Pickling would write the key: refuse."""

@final
class Geography:
    """A validated study geography: region tree, zones and study area."""

    @staticmethod
    def from_tables(
        *,
        regions: _Table | str | os.PathLike[str],
        region_cells: _Table | str | os.PathLike[str],
        zones: _Table | str | os.PathLike[str],
        zone_cells: _Table | str | os.PathLike[str],
        study_area: Sequence[str] | str,
        resolution: int = 9,
    ) -> Geography:
        """Builds a geography from four tables: Parquet paths, Arrow-capsule objects or
        dicts of columns."""
    @staticmethod
    def from_geojson(
        *,
        regions: Mapping[str, Any] | str | os.PathLike[str],
        zones: Mapping[str, Any] | str | os.PathLike[str],
        study_area: Sequence[str] | str,
        resolution: int = 9,
        region_resolution: int = 7,
    ) -> Geography:
        """Builds a geography from GeoJSON FeatureCollections, filled by centroid containment."""
    @property
    def resolution(self) -> int:
        """The analysis resolution."""
    @property
    def region_resolution(self) -> int | None:
        """The resolution of the region cells, or None when there are none."""
    @property
    def regions(self) -> list[str]:
        """Region ids, in table order."""
    @property
    def zones(self) -> list[str]:
        """Zone ids, followed by one `category:<name>` zone per category."""
    @property
    def study_area(self) -> list[str]:
        """The study area as given."""
    def to_tables(self) -> dict[str, Table]:
        """The four tables of the geography (`regions`, `region_cells`, `zones`,
        `zone_cells`), cells as uint64: `Geography.from_tables(**g.to_tables(),
        resolution=g.resolution, study_area=g.study_area)` gives it back."""
    def __reduce__(self) -> tuple[Any, ...]:
        """A geography pickles as its four tables, resolution and study area."""
    @staticmethod
    def _from_ipc(
        tables: Mapping[str, bytes], resolution: int, study_area: str | Sequence[str]
    ) -> Geography:
        """The geography a pickle holds."""

@final
class Engine:
    """The machine settings of a run: threads, memory budget, spill directory and
    progress. None of them changes a number."""

    def __new__(
        cls,
        *,
        threads: int | None = None,
        memory_limit: _Bytes | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        progress: _ProgressArg = None,
    ) -> Engine: ...
    @property
    def threads(self) -> int:
        """Threads (0: one per core)."""
    @property
    def memory_limit(self) -> int | None:
        """The memory budget in bytes, or None for the default (half of the machine's)."""
    @property
    def spill_dir(self) -> pathlib.Path | None:
        """Where spill files go, or None for the system's temporary directory."""
    @property
    def progress(self) -> Any:
        """The progress setting: True, a callable, or None."""

@final
class ReleaseSpec:
    """Which table a release is: bucket, origin level, classes, extrapolation inputs and
    roll-up."""

    def __new__(
        cls,
        bucket: str = "period",
        level: str | None = None,
        classes: str | Sequence[str] | None = None,
        subscribers: Mapping[str, int] | None = None,
        roaming_factors: Mapping[str, float] | None = None,
        *,
        roll_up: bool = True,
        privacy: str | DP | None = None,
        allow_differencing: bool = False,
    ) -> ReleaseSpec: ...
    @property
    def bucket(self) -> str: ...
    @property
    def level(self) -> str | None: ...
    @property
    def classes(self) -> list[str]: ...
    @property
    def subscribers(self) -> dict[str, int] | None: ...
    @property
    def roaming_factors(self) -> dict[str, float]: ...
    @property
    def roll_up(self) -> bool: ...
    @property
    def privacy(self) -> str | DP: ...
    @property
    def allow_differencing(self) -> bool: ...
    def __eq__(self, value: object, /) -> bool: ...

_Spec = ReleaseSpec | Mapping[str, Any]

@final
class DP:
    """The differential-privacy mode of a release (method §10)."""

    def __new__(
        cls,
        rho: float,
        *,
        countries: Sequence[str] | None = None,
        max_partitions: int | None = None,
        max_visits: int = 3,
        max_dwell_s: _Duration | None = None,
    ) -> DP: ...
    @property
    def rho(self) -> float: ...
    @property
    def countries(self) -> list[str]: ...
    @property
    def max_partitions(self) -> int | None: ...
    @property
    def max_visits(self) -> int: ...
    @property
    def max_dwell_s(self) -> int | None: ...

@final
class Study:
    """One geography and one configuration, checked together once: every verb of the
    method runs through it."""

    def __new__(
        cls, geography: Geography, config: Config, *, columns: Mapping[str, str] | None = None
    ) -> Study: ...
    @property
    def geography(self) -> Geography:
        """The geography."""
    @property
    def config(self) -> Config:
        """The configuration (its key is never shown)."""
    @property
    def columns(self) -> dict[str, str]:
        """The column names pings are read with, by role."""
    def prepare(self, pings: _Pings, *, engine: Engine | None = None) -> Prepared:
        """Cleans, pseudonymizes and locates pings (method §1-3), all in memory."""
    def profile(self, pings: Prepared | _Pings, *, engine: Engine | None = None) -> Table:
        """Per-device microdata (method §4). Pseudonymous, not anonymous: never publish it."""
    def visits(self, pings: Prepared | _Pings, *, engine: Engine | None = None) -> Table:
        """Visits (method §5). Pseudonymous, not anonymous: never publish them."""
    def release(
        self,
        pings: Prepared | _Pings,
        bucket: str = "period",
        level: str | None = None,
        classes: str | Sequence[str] | None = None,
        subscribers: Mapping[str, int] | None = None,
        roaming_factors: Mapping[str, float] | None = None,
        *,
        roll_up: bool = True,
        privacy: str | DP | None = None,
        allow_differencing: bool = False,
        engine: Engine | None = None,
    ) -> Release:
        """The whole method (§2-9) on pings: the protected release of one table."""
    def releases(
        self, pings: Prepared | _Pings, specs: Sequence[_Spec], *, engine: Engine | None = None
    ) -> list[Release]:
        """Several releases of the same pings, read once."""
    def spend(
        self,
        release: Release,
        payments: Any,
        *,
        by: Sequence[str] | None = None,
        p: float = 10.0,
        min_merchants: int = 3,
        visitor_class: str | None = None,
    ) -> Spend:
        """Spend per visitor: card payments joined to `release` (a `crowdtally.Release` of
        this study) and protected, as `crowdtally.spend` describes."""
    def _check_same(self, other: Study) -> None:
        """Raises a ConfigError naming `geography` or `config` when `other` is another
        study's."""

@final
class Prepared:
    """Cleaned, pseudonymized, located pings and their quality report, with the study
    they were located for.

    The pings are microdata: pseudonymous, not anonymous. Never publish them.
    """

    @property
    def report(self) -> dict[str, Any]:
        """The quality report: pings read and kept, drops by reason, opt-out counts."""
    @property
    def study(self) -> Study:
        """The study the pings were located for."""
    def __len__(self) -> int:
        """The number of located pings."""
    def release(
        self,
        bucket: str = "period",
        level: str | None = None,
        classes: str | Sequence[str] | None = None,
        subscribers: Mapping[str, int] | None = None,
        roaming_factors: Mapping[str, float] | None = None,
        *,
        roll_up: bool = True,
        privacy: str | DP | None = None,
        allow_differencing: bool = False,
    ) -> Release:
        """One release of these pings (method §6-9)."""
    def releases(self, specs: Sequence[_Spec]) -> list[Release]:
        """Several releases of these pings."""
    def risk(
        self,
        *,
        points: Sequence[int] | None = None,
        spatial: str = "cell",
        temporal: str = "hour",
        samples: int | None = None,
        seed: int = 0,
        k: int | None = None,
    ) -> Risk:
        """How unique these pings' traces are, as `crowdtally.risk` describes: for the data
        protection officer, counts and shares only."""
    def profile(self) -> Table:
        """Per-device microdata (method §4). Pseudonymous, not anonymous: never publish it."""
    def visits(self) -> Table:
        """Visits (method §5). Pseudonymous, not anonymous: never publish them."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def to_arrow(self) -> Any:
        """The pings as a `pyarrow.Table` (needs pyarrow)."""
    def to_pandas(self) -> Any:
        """The pings as a `pandas.DataFrame` (needs pandas and pyarrow)."""
    def to_polars(self) -> Any:
        """The pings as a `polars.DataFrame` (needs polars)."""
    def __reduce__(self) -> tuple[Any, ...]: ...

def pseudonymize(
    ids: _Column,
    *,
    key: bytes | str,
    period_label: str,
) -> np.ndarray[tuple[int], np.dtype[np.uint64]]:
    """Pseudonymizes raw subscriber ids, returning a numpy uint64 array."""

@final
class Table:
    """A table of results (per-device microdata, visits), exported through the Arrow
    PyCapsule interface."""

    @property
    def name(self) -> str:
        """What the table holds (`devices`, `visits`)."""
    @property
    def column_names(self) -> list[str]:
        """The column names, in order."""
    def __len__(self) -> int: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def to_arrow(self) -> Any:
        """The table as a `pyarrow.Table` (needs pyarrow)."""
    def to_pandas(self) -> Any:
        """The table as a `pandas.DataFrame` (needs pandas and pyarrow)."""
    def to_polars(self) -> Any:
        """The table as a `polars.DataFrame` (needs polars)."""
    def __reduce__(self) -> tuple[Any, ...]: ...

def write_parquet(
    table: _ArrowStream | Any,
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Writes a table (anything with the Arrow PyCapsule interface) as a Parquet file,
    by the core: no pyarrow needed. `metadata` is added to the schema metadata."""

def read_parquet_table(path: str | os.PathLike[str], name: str) -> tuple[Table, dict[str, str]]:
    """A whole Parquet file as a table named `name`, with its schema metadata."""

def _risk(
    pings: Prepared | Any,
    *,
    points: Sequence[int],
    spatial: str,
    temporal: str,
    samples: int | None = None,
    seed: int = 0,
    k: int | None = None,
    study: Study | None = None,
    engine: Engine | None = None,
) -> tuple[Table, dict[str, Any]]:
    """The re-identification risk audit (`crowdtally.risk`) of prepared pings, or of raw
    pings of `study` read shard by shard within `engine`'s budget: the table and the
    report."""

def _spend(
    study: Study,
    release_table: _Table,
    release_parameters: str,
    payments: _Table,
    *,
    by: Sequence[str],
    p: float,
    min_merchants: int,
    visitor_class: str | None = None,
) -> tuple[Table, dict[str, Any]]:
    """Spend per visitor (`crowdtally.spend`): card-payment aggregates joined to a release
    (its table and its report's parameters as JSON) and protected. Returns the spend
    table and its report."""

def table_to_ipc(table: _ArrowStream | Any) -> bytes:
    """A table as Arrow IPC stream bytes."""

def table_from_ipc(data: bytes, name: str) -> Table:
    """A table named `name` from Arrow IPC stream bytes."""

@final
class Scenario:
    """A generated synthetic city: country, zones, people, their pings and the truth."""

    def __new__(cls, **parameters: Any) -> Scenario: ...
    @property
    def geography(self) -> Geography:
        """The study geography."""
    @property
    def people(self) -> int:
        """The number of simulated people (customers or not)."""
    @property
    def period(self) -> tuple[str, str]:
        """The study period as (first date, day after the last)."""
    @property
    def people_at_full_scale(self) -> float:
        """People at full scale for this period (country and roamers)."""
    @property
    def visitors_at_full_scale(self) -> float:
        """Expected distinct visitors at full scale for this period."""
    def parameters(self) -> dict[str, Any]:
        """The parameters, as a dict."""
    def subscribers(self) -> dict[str, int]:
        """The operator's customers per municipality where they live, as its billing counts
        them: the `subscribers=` of a release, known without reading the pings."""
    def config(self) -> Config:
        """A run configuration with this scenario's period and a key derived from the seed."""
    def pings(self) -> Table:
        """All observed pings as one table (held in memory)."""
    def iter_batches(self, people_per_batch: int = 10_000) -> PingBatches:
        """The pings in batches of `people_per_batch` people, one table per batch."""
    def truth(self) -> dict[str, Table]:
        """The truth: {"persons": Table, "zone_days": Table}."""
    def payments(self) -> dict[str, Any]:
        """The merchants of the city's zones and the card payments of its people, driven by
        their true visits: {"merchants": Table, "payments": Table, "spend_by_zone": dict of
        the true spend in cents by zone id}."""

@final
class PingBatches:
    """An iterator of ping tables, one per batch of people."""

    def __iter__(self) -> PingBatches: ...
    def __next__(self) -> Table: ...

# -- distributed runs (crowdtally.distributed) ------------------------------------------

@final
class ShippedKey:
    """A key shipped to the workers inside the job itself (`crowdtally.ShipKey()`): its
    bytes travel with the tasks, so only use it where the engine authenticates and
    encrypts its traffic. Never shown; pickled only to reach the workers."""

    @staticmethod
    def of(config: Config) -> ShippedKey:
        """The key of a configuration, to ship."""
    @staticmethod
    def _from_bytes(data: bytes) -> ShippedKey: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

_Key = bytes | str | ShippedKey

@final
class Plan:
    """The plan of a distributed run: the configuration without its key (opt-out ids as
    keyed digests), the period and its label, and the tables to aggregate. It pickles:
    it is what the workers are sent."""

    def __new__(cls, study: Study, specs: Sequence[_Spec] | None = None) -> Plan: ...
    def needs_scan(self) -> bool:
        """Whether the period must first be found by a scan of the input."""
    def with_span(self, first: int | None, last: int | None) -> Plan:
        """The plan with the period of the data: from the first to the last instant of its
        valid pings (both None when it has none)."""
    @property
    def period(self) -> tuple[str, str] | None:
        """The period (first date, day after the last), once known."""
    @property
    def label(self) -> str | None:
        """The pseudonym label, once the period is known."""
    def input_kind(self, study: Study, schema: object) -> str | None:
        """Checks the input's schema (a pyarrow schema) on the driver, and gives the kind of
        its subscriber ids (`text`, `binary`, `integer`, or None for a column of nulls)."""
    def to_json(self) -> str:
        """The plan as JSON."""
    @staticmethod
    def from_json(text: str) -> Plan:
        """A plan from its JSON."""
    def __reduce__(self) -> tuple[Any, ...]: ...

@final
class Scanner:
    """The first pass when no period is given: the span of a part's valid pings."""

    def __new__(
        cls, plan: Plan, geography: Geography, key: _Key, *, threads: int = 1
    ) -> Scanner: ...
    def push(self, batch: object) -> None:
        """Reads a batch (or any Arrow table) of raw pings."""
    def span(self) -> tuple[int, int] | None:
        """The span so far as (first, last) epoch seconds, or None."""
    def span_batch(self) -> Any:
        """The span as a one-row pyarrow RecordBatch (`first`, `last`)."""

@final
class Mapper:
    """The map side: raw pings in, pseudonymous pings out (no raw id), counter rows at
    the end."""

    def __new__(
        cls, plan: Plan, geography: Geography, key: _Key, *, threads: int = 1
    ) -> Mapper: ...
    def map(self, batch: object) -> list[Any]:
        """The kept pings of a batch of raw pings, pseudonymized, as pyarrow RecordBatches
        (one per batch of the input)."""
    def finish(self) -> Any:
        """The counter rows of the part, as a pyarrow RecordBatch; the mapper is finished."""

@final
class Reducer:
    """The reduce side: pseudonymous pings of whole devices in, additive partials out."""

    def __new__(
        cls, plan: Plan, geography: Geography, key: _Key, *, engine: Engine | None = None
    ) -> Reducer: ...
    def push(self, batch: object) -> None:
        """Reads a batch (or any Arrow table) of pseudonymous pings and counter rows."""
    def finish(self) -> Any:
        """The partials of the devices read, as a pyarrow RecordBatch; the reducer is
        finished."""
    def devices(self) -> Any:
        """The devices table of the devices read (`Study.devices`' rows for them), as a
        pyarrow RecordBatch; the reducer is finished."""
    def visits(self) -> Any:
        """The visits table of the devices read (`Study.visits`' rows for them), as a
        pyarrow RecordBatch; the reducer is finished."""

def finish_partials(
    study: Study,
    plan: Plan,
    specs: Sequence[_Spec],
    partials: Iterable[object],
    input_kind: str | None = None,
) -> list[Release]:
    """The releases of `specs` (the plan's) from partials (pyarrow tables or batches,
    summed by key or not): disclosure control or noise, extrapolation, the report and
    the ledger, once, here. `input_kind` is `Plan.input_kind`'s answer."""

def distributed_schemas() -> dict[str, Any]:
    """The Arrow schemas of the distributed run, by name: `pseudonymous` (what mappers
    give), `partials` (what reducers give), `span` (what scanners give), and `devices`
    and `visits` (what reducers give instead of partials)."""
