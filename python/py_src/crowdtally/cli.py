"""The ``crowdtally`` command: ``analyze``, ``report`` and ``synth``.

    crowdtally synth --out demo                    # a synthetic city, ready to analyse
    crowdtally analyze --config demo/city.toml     # the release, its report, an HTML page
    crowdtally report demo/out/visitors.parquet --html visitors.html

``analyze`` reads everything it needs from a TOML file. The key comes from the
environment variable ``CROWDTALLY_KEY`` or from a file the config names (``key_file``),
never from the command line: other users of the machine can read a command line, and
shells keep it in their history. An error is one line on stderr, ``crowdtally: error:
...``, and the exit status says what kind it was (``EXIT_*``), so scripts can act on it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import difflib
import importlib.util
import os
import secrets
import sys
import textwrap
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "EXIT_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_LEDGER",
    "EXIT_OK",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "KEY_ENV",
    "main",
]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_LEDGER = 4
EXIT_INTERRUPTED = 130

KEY_ENV = "CROWDTALLY_KEY"

_PROG = "crowdtally"

_EXIT_CODES = f"""\
exit status:
  {EXIT_OK}    success
  {EXIT_UNEXPECTED}    anything unexpected (run again with --debug for the traceback)
  {EXIT_USAGE}    usage or configuration error: a bad option, config file, config key or key
  {EXIT_INPUT}    input error: a pings, geography or release file missing or unreadable,
       or an output that cannot be written
  {EXIT_LEDGER}    the privacy ledger refuses the release (budget spent, or the period
       already released differently)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)

Errors are one line on stderr, "crowdtally: error: ...", without a traceback unless
--debug is given. No output, message or file ever shows the key or a subscriber id."""

_KEY_TEXT = f"""\
the key:
  The pseudonymization key (at least 16 bytes) is read from the file named by key_file
  in the config, or else from the environment variable {KEY_ENV}. There is no --key
  option, on purpose: a command line can be read by every user of the machine (ps,
  /proc) and is kept in the shell's history."""

_CONFIG_TEXT = """\
the config file (TOML; relative paths are read from the config file's directory):
  key_file = "crowdtally.key"            # else the key is $CROWDTALLY_KEY
  period = ["2026-07-01", "2026-07-08"]  # [first day, day after the last): end exclusive
  tz = "Europe/Brussels"                 # also: period_label, home_country, k (30),
                                         # max_gap, min_dwell, min_nights,
                                         # usual_env_min_days, opt_out_file (one id a
                                         # line), ledger, budget
  [geography]                            # Parquet or CSV tables ...
  regions = "regions.parquet"            # region_id, level, parent_id, population
  region_cells = "region_cells.parquet"  # cell, region_id
  zones = "zones.parquet"                # zone_id, name, category
  zone_cells = "zone_cells.parquet"      # zone_id, cell
  study_area = ["kortrijk"]              # ... or GeoJSON: regions = "regions.geojson",
  resolution = 9                         # zones = "zones.geojson", region_resolution = 7
  [pings]
  paths = "pings/*.parquet"              # Parquet: a path, a glob or a list of them
  [columns]                              # your column names, by role: subscriber, ts,
  ts = "timestamp"                       # lat, lon, cell, country
  [release]
  bucket = "day"                         # hour, day, week, month, quarter, period
  level = "municipality"                 # the origin level (default: the leaves)
  classes = ["visitor"]                  # also: roll_up, allow_differencing
  roaming_factors = { "*" = 3.0 }        # per roamer country, "*" for the others
  subscribers = "subscribers.csv"        # region_id,subscribers; or a table; default:
                                         # detected from the pings
  # [release.dp]                         # differential privacy instead of k-anonymity:
  # rho = 0.5                            # also countries, max_partitions, max_visits,
                                         # max_dwell
  [output]                               # at least one of:
  release = "out/visitors.parquet"       # .parquet (with the report) or .csv, or a list
  report = "out/report.json"             # the quality and privacy report
  html = "out/report.html"               # the report as one page (also html_zone)"""


class CliError(Exception):
    """An error the command reports in one line, with its exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- the command line -----------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line and returns its exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    for argument in arguments:
        if argument.startswith("--key"):
            # Refused before argparse, which would echo the value of an unknown option.
            _say(
                "error",
                f"there is no {argument.split('=')[0]} option: a command line is visible to "
                f"every user of the machine and kept in shell history; set {KEY_ENV}, or name "
                "a key_file in the config",
            )
            return EXIT_USAGE
    parser = _parser()
    args = parser.parse_args(arguments)  # usage errors exit here, with status 2
    run: Callable[[argparse.Namespace], int] = args.run
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return run(args)
    except KeyboardInterrupt:
        _debug_traceback(args)
        _say("error", "interrupted")
        return EXIT_INTERRUPTED
    except SystemExit:
        raise
    except BaseException as error:  # a panic of the core is a BaseException
        code, message = _classify(error)
        _debug_traceback(args)
        _say("error", message)
        return code
    finally:
        warnings.showwarning = shown


def _parser() -> argparse.ArgumentParser:
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=_wrap(
            "Visitor statistics for a city from mobile-network pings: pseudonymized with a "
            "secret key, protected so that no number concerns fewer than k devices, and "
            "extrapolated from the operator's customers to the population."
        ),
        epilog=(
            "example:\n"
            "  crowdtally synth --out demo\n"
            "  crowdtally analyze --config demo/city.toml\n"
            "  crowdtally report demo/out/visitors.parquet --html visitors.html\n\n"
            "Run `crowdtally COMMAND --help` for a command's options.\n\n" + _EXIT_CODES
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    analyze = commands.add_parser(
        "analyze",
        parents=[debug],
        help="run the method on pings as a config file says, and write the release",
        description=_wrap(
            "Reads the pings a TOML config file names, cleans, pseudonymizes and locates "
            "them, and writes the protected release (visitors per zone, time bucket and "
            "origin, with dwell and extrapolated estimates) as Parquet or CSV, with its "
            "quality and privacy report as JSON and as an HTML page. A summary goes to "
            "stdout, warnings to stderr."
        ),
        epilog=(
            "example:\n"
            "  crowdtally synth --out demo            # writes demo/city.toml and its data\n"
            "  crowdtally analyze --config demo/city.toml\n"
            "  CROWDTALLY_KEY=... crowdtally analyze --config city.toml --memory-limit 4GiB\n\n"
            f"{_CONFIG_TEXT}\n\n{_KEY_TEXT}\n\n{_EXIT_CODES}"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    analyze.add_argument(
        "--config", required=True, metavar="FILE", help="the TOML config file (see below)"
    )
    machine = analyze.add_argument_group(
        "machine settings (they never change a number)",
    )
    machine.add_argument(
        "--threads", type=int, metavar="N", help="threads to use (default: one per core)"
    )
    machine.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="memory budget, such as 4GiB; pings beyond it are spilled to disk "
        "(default: half of the machine's memory)",
    )
    machine.add_argument(
        "--spill-dir",
        metavar="DIR",
        help="where spill files go (default: the system's temporary directory)",
    )
    machine.add_argument(
        "--progress", action="store_true", help="show progress bars on stderr (needs tqdm)"
    )
    analyze.set_defaults(run=_analyze)

    report = commands.add_parser(
        "report",
        parents=[debug],
        help="summarize a written release, and write its report as HTML or JSON",
        description=_wrap(
            "Reads a release written by `crowdtally analyze` (or Release.write) as Parquet, "
            "prints a summary, and writes its report as a self-contained HTML page "
            "(figures, quality report, caveats, the table's first rows) or as JSON."
        ),
        epilog=(
            "example:\n"
            "  crowdtally report demo/out/visitors.parquet --html visitors.html\n"
            "  crowdtally report visitors.parquet --json report.json\n\n" + _EXIT_CODES
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("release", metavar="RELEASE", help="a release's Parquet file")
    report.add_argument("--html", metavar="FILE", help="write the HTML report (needs pyarrow)")
    report.add_argument("--json", metavar="FILE", help="write the report as JSON")
    report.add_argument(
        "--zone",
        metavar="ZONE",
        help="the zone of the HTML report's figures (default: the busiest zone)",
    )
    report.add_argument(
        "--max-rows",
        type=int,
        default=200,
        metavar="N",
        help="rows of the table shown in the HTML report (default: 200)",
    )
    report.set_defaults(run=_report)

    synth = commands.add_parser(
        "synth",
        parents=[debug],
        help="write a synthetic city (pings, geography, key, city.toml) to try crowdtally",
        description=_wrap(
            "Generates the synthetic city around Kortrijk, whose truth is known, and writes "
            "its pings (Parquet, one file per batch of people), its geography tables, the "
            "truth, a fresh random key file and a city.toml that `crowdtally analyze` runs "
            "as it is. Only the operator's customers ping, with jitter, gaps, noise and "
            "dirty rows, as real pings have."
        ),
        epilog=(
            "example:\n"
            "  crowdtally synth --out demo && crowdtally analyze --config demo/city.toml\n"
            "  crowdtally synth --scale 0.01 --days 92 --out quarter   # a summer quarter\n\n"
            "files written in the --out directory:\n"
            "  city.toml                     the config of `crowdtally analyze`\n"
            "  crowdtally.key                a random key (kept when it exists already)\n"
            "  pings/part-NNNNN.parquet      the pings (subscriber, ts, lat and lon, country)\n"
            "  geography/*.parquet           regions, region_cells, zones, zone_cells\n"
            "  truth/*.parquet               persons and zone_days, to compare with\n\n"
            + _EXIT_CODES
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument("--out", required=True, metavar="DIR", help="the directory to write")
    size = synth.add_mutually_exclusive_group()
    size.add_argument(
        "--scale",
        type=float,
        metavar="SHARE",
        help="share of the full population simulated (default: 0.005, about 9,500 people)",
    )
    size.add_argument("--persons", type=int, metavar="N", help="people to simulate, about")
    synth.add_argument(
        "--days", type=int, default=28, metavar="N", help="days simulated (default: 28)"
    )
    synth.add_argument(
        "--start", default="2026-07-01", metavar="DATE", help="first day (default: 2026-07-01)"
    )
    synth.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default: 0)")
    synth.add_argument(
        "--cells", action="store_true", help="pings carry H3 cells instead of lat/lon"
    )
    synth.add_argument(
        "--integer-ids", action="store_true", help="integer subscriber ids instead of text"
    )
    synth.add_argument(
        "--force",
        action="store_true",
        help="replace the synthetic city already in the directory",
    )
    synth.set_defaults(run=_synth)
    return parser


def _wrap(text: str) -> str:
    # The help formatter keeps the examples' line breaks, so prose is wrapped here.
    return textwrap.fill(text, width=88)


def _version() -> str:
    from crowdtally import __version__

    return __version__


def _say(kind: str, message: str) -> None:
    # One line, so that a log line is a whole message.
    print(f"{_PROG}: {kind}: {' '.join(message.split())}", file=sys.stderr)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    # A library warning reads like the command's own, without a source line.
    _say("warning", str(message))


def _debug_traceback(args: argparse.Namespace) -> None:
    if getattr(args, "debug", False):
        traceback.print_exc(file=sys.stderr)


def _classify(error: BaseException) -> tuple[int, str]:
    """The exit status and message of an error that reached the top."""
    from crowdtally import ConfigError, GeographyError, InputError, LedgerError

    if isinstance(error, CliError):
        return error.code, str(error)
    if isinstance(error, LedgerError):
        return EXIT_LEDGER, str(error)
    if isinstance(error, InputError | GeographyError):
        return EXIT_INPUT, str(error)
    if isinstance(error, ConfigError):
        return EXIT_USAGE, str(error)
    if isinstance(error, OSError):
        where = f" `{error.filename}`" if error.filename is not None else ""
        return EXIT_INPUT, f"cannot use{where}: {error.strerror or error}"
    return (
        EXIT_UNEXPECTED,
        f"unexpected {type(error).__name__}: {error} (run again with --debug for the traceback)",
    )


# -- the config file ------------------------------------------------------------------

_ROLES = ("subscriber", "ts", "lat", "lon", "cell", "country")
_OUTPUT_FORMATS = (".parquet", ".pq", ".csv")
_GEOJSON = (".geojson", ".json")


def _kind(value: object) -> str:
    """What a TOML value is, for messages (never the value itself, which may be private)."""
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (dt.datetime, "a date-time"),
        (dt.date, "a date"),
        (dt.time, "a time"),
        (list, "an array"),
        (dict, "a table"),
    ]
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return type(value).__name__


class _Section:
    """One table of the config file. Each key is read once; `done` refuses what is left,
    so that a misspelt key is an error rather than a default silently used."""

    def __init__(self, source: str, data: Mapping[str, Any], prefix: str = "") -> None:
        self.source = source
        self._data = dict(data)
        self._prefix = prefix
        self._known: list[str] = []

    def name(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def fail(self, key: str, message: str) -> NoReturn:
        raise CliError(f"{self.source}: `{self.name(key)}` {message}", EXIT_USAGE)

    def _take(self, key: str, required: bool, hint: str) -> Any:
        self._known.append(key)
        value = self._data.pop(key, None)
        if value is None and required:
            self.fail(key, f"is missing: {hint}" if hint else "is missing")
        return value

    def text(self, key: str, *, required: bool = False, hint: str = "") -> str | None:
        value = self._take(key, required, hint)
        if value is not None and not isinstance(value, str):
            self.fail(key, f"must be a string, got {_kind(value)}")
        return value

    def texts(self, key: str, *, required: bool = False, hint: str = "") -> list[str] | None:
        """A string or an array of strings."""
        value = self._take(key, required, hint)
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            if not value:
                self.fail(key, "must not be empty")
            return list(value)
        self.fail(key, f"must be a string or an array of strings, got {_kind(value)}")

    def integer(self, key: str) -> int | None:
        value = self._take(key, False, "")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(key, f"must be an integer, got {_kind(value)}")
        return value

    def number(self, key: str) -> float | None:
        value = self._take(key, False, "")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, got {_kind(value)}")
        return float(value)

    def boolean(self, key: str) -> bool | None:
        value = self._take(key, False, "")
        if value is not None and not isinstance(value, bool):
            self.fail(key, f"must be true or false, got {_kind(value)}")
        return value

    def duration(self, key: str) -> int | str | None:
        """Seconds, or a duration such as "3h" (checked by the core)."""
        value = self._take(key, False, "")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
            self.fail(key, f'must be seconds or a duration such as "3h", got {_kind(value)}')
        return value

    def dates(self, key: str) -> list[str | dt.date] | None:
        value = self._take(key, False, "")
        if value is None:
            return None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(
                isinstance(item, str | dt.date) and not isinstance(item, dt.datetime)
                for item in value
            )
        ):
            self.fail(
                key,
                "must be two dates, the first day and the day after the last (the end is "
                'exclusive): ["2026-07-01", "2026-07-08"] for the first week of July',
            )
        return list(value)

    def numbers(self, key: str) -> dict[str, float] | None:
        """A table of numbers."""
        value = self._take(key, False, "")
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(key, f"must be a table of numbers, got {_kind(value)}")
        for name, item in value.items():
            if isinstance(item, bool) or not isinstance(item, int | float):
                self.fail(key, f"must be a table of numbers, but `{name}` is {_kind(item)}")
        return {name: float(item) for name, item in value.items()}

    def section(self, key: str, *, required: bool = False, hint: str = "") -> _Section | None:
        value = self._take(key, required, hint)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(key, f"must be a table, got {_kind(value)}")
        return _Section(self.source, value, f"{self.name(key)}.")

    def raw(self, key: str) -> Any:
        return self._take(key, False, "")

    def refuse(self, key: str, message: str) -> None:
        if key in self._data:
            self.fail(key, message)

    def done(self) -> None:
        for key in self._data:
            close = difflib.get_close_matches(key, self._known, n=1)
            if close:
                hint = f"did you mean `{self.name(close[0])}`?"
            else:
                hint = "the keys here are " + ", ".join(self._known)
            self.fail(key, f"is not a key crowdtally knows ({hint})")


@dataclass
class _Geography:
    tables: dict[str, Path]  # regions, region_cells, zones, zone_cells; or regions, zones
    geojson: bool
    study_area: list[str]
    resolution: int | None
    region_resolution: int | None


@dataclass
class _Outputs:
    release: list[Path]
    report: Path | None
    html: Path | None
    html_zone: str | None


@dataclass
class _Settings:
    """An analyze config file, read and checked."""

    source: str
    key_file: Path | None
    config: dict[str, Any]
    opt_out_file: Path | None
    geography: _Geography
    pings: list[str]
    columns: dict[str, str] | None
    release: dict[str, Any]
    subscribers_file: Path | None
    dp: dict[str, Any] | None
    outputs: _Outputs


def _read_config(path_text: str) -> _Settings:
    import tomllib

    path = Path(path_text).expanduser()
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CliError(
            f"cannot read the config file `{path_text}`: {error.strerror or error}", EXIT_USAGE
        ) from error
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise CliError(f"{path_text}: is not UTF-8 text", EXIT_USAGE) from error
    except tomllib.TOMLDecodeError as error:
        raise CliError(f"{path_text}: is not valid TOML: {error}", EXIT_USAGE) from error
    return _settings(_Section(path_text, data), path.resolve().parent)


def _settings(top: _Section, directory: Path) -> _Settings:
    def place(key: str, value: str, section: _Section) -> Path:
        if not value:
            section.fail(key, "must name a file")
        where = Path(value).expanduser()
        return where if where.is_absolute() else directory / where

    # The value is not read: it is a secret, and an error must not show it.
    top.refuse("key", f"does not belong in a config file: name a `key_file`, or set {KEY_ENV}")
    key_file_text = top.text("key_file")
    key_file = place("key_file", key_file_text, top) if key_file_text is not None else None
    config: dict[str, Any] = {}
    for key in ("period_label", "tz", "home_country"):
        value = top.text(key)
        if value is not None:
            config[key] = value
    period = top.dates("period")
    if period is not None:
        config["period"] = tuple(period)
    for key in ("k", "min_nights", "usual_env_min_days"):
        number = top.integer(key)
        if number is not None:
            config[key] = number
    for key in ("max_gap", "min_dwell"):
        duration = top.duration(key)
        if duration is not None:
            config[key] = duration
    ledger = top.text("ledger")
    if ledger is not None:
        config["ledger"] = place("ledger", ledger, top)
    budget = top.number("budget")
    if budget is not None:
        config["budget"] = budget
    opt_out_text = top.text("opt_out_file")
    opt_out_file = place("opt_out_file", opt_out_text, top) if opt_out_text is not None else None

    geography = _geography_settings(
        top.section("geography", required=True, hint="the regions and zones of the study"),
        place,
    )

    pings = top.section("pings", required=True, hint="the [pings] table, with paths")
    assert pings is not None
    paths = pings.texts(
        "paths", required=True, hint="the pings' Parquet files: a path, a glob or a list"
    )
    assert paths is not None
    pings_paths = [str(place("paths", text, pings)) for text in paths]
    pings.done()

    columns_section = top.section("columns")
    columns: dict[str, str] = {}
    if columns_section is not None:
        for role in _ROLES:
            name = columns_section.text(role)
            if name is not None:
                columns[role] = name
        columns_section.done()

    release, subscribers_file, dp = _release_settings(top.section("release"), place)
    outputs = _output_settings(
        top.section(
            "output",
            required=True,
            hint="name the files to write: release, report and/or html",
        ),
        place,
    )
    top.done()
    return _Settings(
        source=top.source,
        key_file=key_file,
        config=config,
        opt_out_file=opt_out_file,
        geography=geography,
        pings=pings_paths,
        columns=columns or None,
        release=release,
        subscribers_file=subscribers_file,
        dp=dp,
        outputs=outputs,
    )


_Place = Callable[[str, str, _Section], Path]


def _geography_settings(section: _Section | None, place: _Place) -> _Geography:
    assert section is not None
    regions = section.text(
        "regions",
        required=True,
        hint="a Parquet or CSV table (region_id, level, parent_id, population) or GeoJSON",
    )
    assert regions is not None
    geojson = Path(regions).suffix.lower() in _GEOJSON
    tables: dict[str, Path] = {"regions": place("regions", regions, section)}
    names = ("zones",) if geojson else ("region_cells", "zones", "zone_cells")
    for name in names:
        value = section.text(name, required=True, hint="a file")
        assert value is not None
        tables[name] = place(name, value, section)
    for name, where in tables.items():
        suffix = where.suffix.lower()
        if geojson and suffix not in _GEOJSON:
            section.fail(name, "must be GeoJSON (.geojson or .json) too, as `regions` is")
        if not geojson and suffix not in (".parquet", ".pq", ".csv"):
            section.fail(name, "must be a Parquet (.parquet) or CSV (.csv) file")
    if geojson:
        for name in ("region_cells", "zone_cells"):
            if section.raw(name) is not None:
                section.fail(name, "is not used with GeoJSON: the polygons give the cells")
    study_area = section.texts(
        "study_area", required=True, hint="the region ids of the study area, such as a city"
    )
    assert study_area is not None
    resolution = section.integer("resolution")
    region_resolution = section.integer("region_resolution")
    if region_resolution is not None and not geojson:
        section.fail(
            "region_resolution", "is only for GeoJSON: tables give cells at their resolution"
        )
    section.done()
    return _Geography(tables, geojson, study_area, resolution, region_resolution)


_DP_KEYS = ("rho", "countries", "max_partitions", "max_visits", "max_dwell")


def _release_settings(
    section: _Section | None, place: _Place
) -> tuple[dict[str, Any], Path | None, dict[str, Any] | None]:
    release: dict[str, Any] = {}
    if section is None:
        return release, None, None
    for key in ("bucket", "level"):
        value = section.text(key)
        if value is not None:
            release[key] = value
    classes = section.texts("classes")
    if classes is not None:
        release["classes"] = classes
    for key in ("roll_up", "allow_differencing"):
        flag = section.boolean(key)
        if flag is not None:
            release[key] = flag
    factors = section.numbers("roaming_factors")
    if factors is not None:
        release["roaming_factors"] = factors
    subscribers_file: Path | None = None
    subscribers = section.raw("subscribers")
    if isinstance(subscribers, str):
        subscribers_file = place("subscribers", subscribers, section)
    elif isinstance(subscribers, dict):
        counts: dict[str, int] = {}
        for region, count in subscribers.items():
            if isinstance(count, bool) or not isinstance(count, int):
                section.fail(
                    "subscribers", f"must count subscribers in integers, but `{region}` does not"
                )
            counts[region] = count
        release["subscribers"] = counts
    elif subscribers is not None:
        section.fail(
            "subscribers",
            f"must be a table (region = subscribers) or a CSV file, got {_kind(subscribers)}",
        )
    dp: dict[str, Any] | None = None
    dp_section = section.section("dp")
    if dp_section is not None:
        rho = dp_section.number("rho")
        if rho is None:
            dp_section.fail("rho", "is missing: the privacy loss of this release, such as 0.5")
        dp = {"rho": rho}
        countries = dp_section.texts("countries")
        if countries is not None:
            dp["countries"] = countries
        for key, name in (("max_partitions", "max_partitions"), ("max_visits", "max_visits")):
            number = dp_section.integer(key)
            if number is not None:
                dp[name] = number
        max_dwell = dp_section.duration("max_dwell")
        if max_dwell is not None:
            dp["max_dwell_s"] = max_dwell
        dp_section.done()
    section.done()
    return release, subscribers_file, dp


def _output_settings(section: _Section | None, place: _Place) -> _Outputs:
    assert section is not None
    release = [place("release", text, section) for text in section.texts("release") or []]
    for where in release:
        if where.suffix.lower() not in _OUTPUT_FORMATS:
            section.fail("release", f"files must end in {', '.join(_OUTPUT_FORMATS)}")
    report_text = section.text("report")
    html_text = section.text("html")
    html_zone = section.text("html_zone")
    report = place("report", report_text, section) if report_text is not None else None
    html = place("html", html_text, section) if html_text is not None else None
    if not release and report is None and html is None:
        section.fail("release", "is missing: name at least one of release, report and html")
    if html_zone is not None and html is None:
        section.fail("html_zone", "needs `output.html`, the page whose figures it chooses")
    section.done()
    # What the outputs need is checked now, not after a long run.
    has_pyarrow = importlib.util.find_spec("pyarrow") is not None
    if html is not None and not has_pyarrow:
        section.fail(
            "html", "needs pyarrow, which is not installed: pip install crowdtally[pyarrow]"
        )
    csv_files = [where for where in release if where.suffix.lower() == ".csv"]
    if csv_files and not has_pyarrow and importlib.util.find_spec("polars") is None:
        section.fail(
            "release",
            "names a CSV file, which needs pyarrow or polars: pip install crowdtally[pyarrow]",
        )
    return _Outputs(release, report, html, html_zone)


# -- analyze --------------------------------------------------------------------------

# The config key of each field a core error names.
_FIELD_KEYS = {
    **{
        name: name
        for name in (
            "period",
            "period_label",
            "tz",
            "home_country",
            "k",
            "max_gap",
            "min_dwell",
            "min_nights",
            "usual_env_min_days",
            "ledger",
            "budget",
        )
    },
    "opt_out": "opt_out_file",
    **{
        name: f"geography.{name}"
        for name in (
            "regions",
            "region_cells",
            "zones",
            "zone_cells",
            "study_area",
            "resolution",
            "region_resolution",
        )
    },
    "columns": "columns",
    **{
        name: f"release.{name}"
        for name in (
            "bucket",
            "level",
            "classes",
            "subscribers",
            "roaming_factors",
            "roll_up",
            "allow_differencing",
        )
    },
    "privacy": "release.dp",
    **{name: f"release.dp.{name}" for name in _DP_KEYS},
    "max_dwell_s": "release.dp.max_dwell",
    "threads": "--threads",
    "memory_limit": "--memory-limit",
    "spill_dir": "--spill-dir",
}


@contextmanager
def _core_errors(settings: _Settings, key_source: str) -> Iterator[None]:
    """Turns the core's errors into one-line errors naming the config key at fault."""
    from crowdtally import ConfigError, GeographyError, InputError, LedgerError

    try:
        yield
    except LedgerError as error:
        message = str(error)
        if "allow_differencing" in message:
            message += " (in the config: `release.allow_differencing = true`)"
        raise CliError(message, EXIT_LEDGER) from error
    except (ConfigError, GeographyError, InputError) as error:
        code = EXIT_USAGE if isinstance(error, ConfigError) else EXIT_INPUT
        name = str(error.field).split(".")[0] if error.field is not None else None
        if name == "key":
            where = key_source
        elif error.field in settings.pings:
            where = "`pings.paths`"
        elif settings.columns is not None and error.field in settings.columns.values():
            where = "`columns`"
        elif name in _FIELD_KEYS:
            where = f"`{_FIELD_KEYS[name]}`"
        else:
            raise CliError(f"{settings.source}: {error}", code) from error
        raise CliError(f"{settings.source}: {where}: {error}", code) from error


def _key(settings: _Settings) -> tuple[bytes | str, str]:
    """The key, and where it was read, for messages (the key itself is never shown)."""
    if settings.key_file is not None:
        where = f"`key_file` ({_shown(settings.key_file)})"
        try:
            data = settings.key_file.read_bytes()
        except OSError as error:
            raise CliError(
                f"{settings.source}: `key_file`: cannot read `{_shown(settings.key_file)}`: "
                f"{error.strerror or error}",
                EXIT_USAGE,
            ) from error
        # One trailing newline is not part of the key, as for crowdtally.KeyFromFile.
        return data.removesuffix(b"\n").removesuffix(b"\r"), where
    value = os.environ.get(KEY_ENV)
    if not value:
        raise CliError(
            f"no key: set the environment variable {KEY_ENV}, or name a `key_file` in "
            f"{settings.source}",
            EXIT_USAGE,
        )
    return value, f"the environment variable {KEY_ENV}"


def _check_files(settings: _Settings) -> None:
    """Input files that are not there, named by their config key before any work."""
    geography = settings.geography
    for name, where in geography.tables.items():
        if not where.is_file():
            raise CliError(
                f"{settings.source}: `geography.{name}`: no such file `{_shown(where)}`", EXIT_INPUT
            )
    checks = [("opt_out_file", settings.opt_out_file)]
    checks.append(("release.subscribers", settings.subscribers_file))
    for name, maybe in checks:
        if maybe is not None and not maybe.is_file():
            raise CliError(
                f"{settings.source}: `{name}`: no such file `{_shown(maybe)}`", EXIT_INPUT
            )
    for text in settings.pings:
        # Glob patterns are expanded by the core, which says when one matches nothing.
        if not any(char in text for char in "*?[") and not Path(text).is_file():
            raise CliError(
                f"{settings.source}: `pings.paths`: no such file `{_shown(text)}`", EXIT_INPUT
            )


def _read_csv(path: Path, what: str) -> dict[str, list[str | None]]:
    """A CSV file's columns by name, empty cells as None."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = csv.reader(file)
        header = next(rows, None)
        if not header:
            raise CliError(f"{what}: `{path}` has no header row", EXIT_INPUT)
        columns: dict[str, list[str | None]] = {name.strip(): [] for name in header}
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise CliError(
                    f"{what}: `{path}` line {line} has {len(row)} fields, its header {len(header)}",
                    EXIT_INPUT,
                )
            for name, value in zip(columns, row, strict=True):
                columns[name].append(value.strip() or None)
    return columns


def _integers(values: list[str | None], what: str, column: str) -> list[int | None]:
    numbers: list[int | None] = []
    for row, value in enumerate(values, start=2):
        try:
            numbers.append(None if value is None else int(value))
        except ValueError:
            raise CliError(
                f"{what}: column `{column}` line {row} is not an integer", EXIT_INPUT
            ) from None
    return numbers


def _csv_table(path: Path, what: str) -> dict[str, list[Any]]:
    """A geography table from CSV: populations as integers, cells as H3 hex text or
    decimal integers (as `Geography.to_tables` gives them)."""
    columns: dict[str, list[Any]] = dict(_read_csv(path, what))
    if "population" in columns:
        columns["population"] = _integers(columns["population"], what, "population")
    cells = columns.get("cell")
    if (
        cells is not None
        and cells
        and all(value is not None and value.isdigit() and len(value) > 16 for value in cells)
    ):
        # A decimal uint64: an H3 index in hex has 15 or 16 digits.
        columns["cell"] = [int(value) for value in cells]
    return columns


def _geography(settings: _Settings) -> Any:
    import crowdtally as ct

    geography = settings.geography
    study_area = geography.study_area
    resolution = geography.resolution if geography.resolution is not None else 9
    if geography.geojson:
        return ct.Geography.from_geojson(
            regions=geography.tables["regions"],
            zones=geography.tables["zones"],
            study_area=study_area,
            resolution=resolution,
            region_resolution=(
                geography.region_resolution if geography.region_resolution is not None else 7
            ),
        )
    tables: dict[str, Any] = {}
    for name, where in geography.tables.items():
        what = f"{settings.source}: `geography.{name}`"
        tables[name] = _csv_table(where, what) if where.suffix.lower() == ".csv" else where
    return ct.Geography.from_tables(**tables, study_area=study_area, resolution=resolution)


def _subscribers(settings: _Settings) -> dict[str, int] | None:
    where = settings.subscribers_file
    if where is None:
        return None
    what = f"{settings.source}: `release.subscribers`"
    columns = _read_csv(where, what)
    missing = [name for name in ("region_id", "subscribers") if name not in columns]
    if missing:
        raise CliError(f"{what}: `{where}` has no column {missing[0]}", EXIT_INPUT)
    counts = _integers(columns["subscribers"], what, "subscribers")
    subscribers: dict[str, int] = {}
    for region, count in zip(columns["region_id"], counts, strict=True):
        if region is not None and count is not None:
            subscribers[region] = count
    return subscribers


def _opt_out(settings: _Settings) -> list[str] | None:
    where = settings.opt_out_file
    if where is None:
        return None
    # One raw id a line; the ids are never shown, not even in an error.
    with where.open(encoding="utf-8-sig") as file:
        return [line.strip() for line in file if line.strip()]


def _engine(args: argparse.Namespace) -> Any:
    import crowdtally as ct

    progress: bool | None = None
    if args.progress:
        if importlib.util.find_spec("tqdm") is None:
            _say("warning", "--progress needs tqdm (pip install crowdtally[progress]): no bar")
        else:
            progress = True
    if (args.threads, args.memory_limit, args.spill_dir, progress) == (None, None, None, None):
        return None
    try:
        return ct.Engine(
            threads=args.threads,
            memory_limit=args.memory_limit,
            spill_dir=args.spill_dir,
            progress=progress,
        )
    except ct.ConfigError as error:
        option = _FIELD_KEYS.get(str(error.field), "a machine setting")
        raise CliError(f"{option}: {error}", EXIT_USAGE) from error


def _analyze(args: argparse.Namespace) -> int:
    import crowdtally as ct

    settings = _read_config(args.config)
    engine = _engine(args)
    key, key_source = _key(settings)
    _check_files(settings)
    with _core_errors(settings, key_source):
        config = ct.Config(key=key, opt_out=_opt_out(settings), **settings.config)
        geography = _geography(settings)
        zone = settings.outputs.html_zone
        if zone is not None and zone not in geography.zones:
            raise CliError(
                f"{settings.source}: `output.html_zone`: no zone `{zone}` in the geography",
                EXIT_USAGE,
            )
        study = ct.Study(geography, config, columns=settings.columns)
        release_options = dict(settings.release)
        subscribers = _subscribers(settings)
        if subscribers is not None:
            release_options["subscribers"] = subscribers
        if settings.dp is not None:
            release_options["privacy"] = ct.DP(**settings.dp)
        pings: str | list[str] = settings.pings[0] if len(settings.pings) == 1 else settings.pings
        release = study.release(pings, engine=engine, **release_options)
    written = _write_outputs(release, settings.outputs)
    for line in _summary(release, analyzed=True):
        print(line)
    print(f"wrote {', '.join(_shown(path) for path in written)}")
    for warning in _warnings(release):
        _say("warning", warning)
    return EXIT_OK


def _write_outputs(release: Any, outputs: _Outputs) -> list[Path]:
    written: list[Path] = []
    for path in outputs.release:
        path.parent.mkdir(parents=True, exist_ok=True)
        written.append(release.write(path))
    if outputs.report is not None:
        outputs.report.parent.mkdir(parents=True, exist_ok=True)
        written.append(release.write_report(outputs.report))
    if outputs.html is not None:
        outputs.html.parent.mkdir(parents=True, exist_ok=True)
        written.append(release.report_html(outputs.html, zone=outputs.html_zone))
    return written


def _shown(path: Path | str) -> str:
    """A path as its user would type it: relative to the working directory when it is
    under it."""
    text = os.fspath(path)
    try:
        relative = os.path.relpath(text)
    except ValueError:  # on another drive
        return text
    return text if relative.startswith(os.pardir) else relative


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _summary(release: Any, *, analyzed: bool) -> list[str]:
    """A few lines on what a release holds, from its report."""
    report: dict[str, Any] = release.report
    parameters = report.get("parameters") or {}
    lines: list[str] = []
    period = parameters.get("period") or {}
    if analyzed:
        pings = report.get("pings") or {}
        dropped = {reason: count for reason, count in (pings.get("dropped") or {}).items() if count}
        drops = ", ".join(f"{reason} {_count(count)}" for reason, count in dropped.items())
        lines.append(
            f"pings: {_count(pings.get('read'))} read, {_count(pings.get('kept'))} kept"
            + (f" (dropped: {drops})" if drops else "")
        )
        devices = report.get("devices") or {}
        by_class = ", ".join(
            f"{name} {_count(count)}" for name, count in (devices.get("by_class") or {}).items()
        )
        lines.append(
            f"devices: {_count(devices.get('total'))}" + (f" ({by_class})" if by_class else "")
        )
    if period:
        lines.append(
            f"period: {period.get('start')} to {period.get('end')} (end exclusive), "
            f"time zone {parameters.get('tz')}"
        )
    privacy = report.get("privacy") or {}
    disclosure = report.get("disclosure") or {}
    if privacy.get("mode") == "differential_privacy":
        protection = f"differential privacy, rho {privacy.get('rho')}"
    else:
        protection = (
            f"{_count(disclosure.get('groups'))} groups, "
            f"{_count(disclosure.get('groups_suppressed'))} suppressed "
            f"(fewer than k = {disclosure.get('k')} devices)"
        )
    classes = parameters.get("classes") or []
    lines.append(
        f"release: {len(release):,} rows by zone, {parameters.get('bucket')} and origin "
        f"({parameters.get('level') or 'leaf regions'}), classes {','.join(map(str, classes))}; "
        f"{protection}"
    )
    return lines


def _warnings(release: Any) -> list[str]:
    """The report's warnings, and what a reader should not miss."""
    report: dict[str, Any] = release.report
    warnings = [str(warning) for warning in report.get("warnings") or []]
    disclosure = report.get("disclosure") or {}
    groups, suppressed = disclosure.get("groups"), disclosure.get("groups_suppressed")
    if isinstance(groups, int) and groups > 0 and suppressed == groups:
        warnings.append(
            f"every group is suppressed: no zone had k = {disclosure.get('k')} devices of the "
            "classes asked for in any bucket. Check that the zones' cells contain the pings, "
            "or choose a longer bucket"
        )
    pings = report.get("pings") or {}
    read, outside = pings.get("read"), (pings.get("dropped") or {}).get("outside_period")
    period = (report.get("parameters") or {}).get("period") or {}
    if isinstance(read, int) and isinstance(outside, int) and read and outside > read // 100:
        warnings.append(
            f"{outside:,} of {read:,} pings ({100 * outside / read:.1f} %) are outside the "
            f"period {period.get('start')} to {period.get('end')}, whose end is exclusive: "
            "the day after the last day"
        )
    return warnings


# -- report ---------------------------------------------------------------------------


def _report(args: argparse.Namespace) -> int:
    import crowdtally as ct

    if args.max_rows < 0:
        raise CliError("--max-rows must be at least 0", EXIT_USAGE)
    if args.html is not None and importlib.util.find_spec("pyarrow") is None:
        raise CliError(
            "--html needs pyarrow, which is not installed: pip install crowdtally[pyarrow]",
            EXIT_USAGE,
        )
    release = ct.Release.read(args.release)
    written: list[Path] = []
    if args.json is not None:
        written.append(release.write_report(args.json))
    if args.html is not None:
        try:
            written.append(release.report_html(args.html, zone=args.zone, max_rows=args.max_rows))
        except ValueError as error:
            if args.zone is None or isinstance(error, ct.CrowdtallyError):
                raise
            raise CliError(f"--zone: {error}", EXIT_USAGE) from error
    for line in _summary(release, analyzed=False):
        print(line)
    if written:
        print(f"wrote {', '.join(_shown(path) for path in written)}")
    for warning in _warnings(release):
        _say("warning", warning)
    return EXIT_OK


# -- synth ----------------------------------------------------------------------------

_KEY_FILE = "crowdtally.key"
_DEFAULT_SCALE = 0.005


def _synth(args: argparse.Namespace) -> int:
    from crowdtally import synth
    from crowdtally._crowdtally import write_parquet

    out = Path(args.out)
    config_path = out / "city.toml"
    pings_dir = out / "pings"
    if not args.force and (config_path.exists() or pings_dir.exists()):
        raise CliError(
            f"`{out}` already holds a synthetic city: pass --force to replace it, or choose "
            "another --out",
            EXIT_USAGE,
        )
    if args.days is not None and args.days < 1:
        raise CliError("--days must be at least 1", EXIT_USAGE)
    overrides: dict[str, Any] = {"cells": args.cells, "integer_ids": args.integer_ids}
    if args.persons is None:
        overrides["scale"] = args.scale if args.scale is not None else _DEFAULT_SCALE
    try:
        city = synth.scenario(
            persons=args.persons, days=args.days, start=args.start, seed=args.seed, **overrides
        )
    except ValueError as error:
        raise CliError(f"cannot make this synthetic city: {error}", EXIT_USAGE) from error

    pings_dir.mkdir(parents=True, exist_ok=True)
    for stale in pings_dir.glob("part-*.parquet"):
        stale.unlink()
    pings = 0
    for index, batch in enumerate(city.iter_batches()):
        write_parquet(batch, pings_dir / f"part-{index:05d}.parquet")
        pings += len(batch)
    for folder, tables in (
        ("geography", city.geography.to_tables()),
        ("truth", city.truth),
    ):
        (out / folder).mkdir(exist_ok=True)
        for name, table in tables.items():
            write_parquet(table, out / folder / f"{name}.parquet")
    key_path = out / _KEY_FILE
    if not key_path.exists():
        _write_key(key_path)
    config_path.write_text(_city_toml(city, args), encoding="utf-8")
    start, end = city.period
    print(
        f"wrote a synthetic city to {out}: {pings:,} pings of {city.people:,} people, "
        f"{start} to {end} (end exclusive)"
    )
    print(f"next: crowdtally analyze --config {config_path}")
    return EXIT_OK


def _write_key(path: Path) -> None:
    """A fresh random key, readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(secrets.token_hex(32) + "\n")


def _toml(value: object) -> str:
    """A TOML value (JSON's strings are TOML basic strings when non-ASCII is kept)."""
    import json

    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return repr(value)


def _city_toml(city: Any, args: argparse.Namespace) -> str:
    start, end = city.period
    parameters = city.scenario.parameters()
    share = float(parameters.get("roaming_share") or 0.3)
    geography = city.geography
    has_pyarrow = importlib.util.find_spec("pyarrow") is not None
    size = (
        f"--persons {args.persons}"
        if args.persons is not None
        else f"--scale {parameters['scale']:g}"
    )
    lines = [
        "# The config of `crowdtally analyze --config city.toml`, written by",
        f"# `crowdtally synth {size} --days {args.days} --start {args.start} --seed {args.seed}`.",
        "# Relative paths are read from this file's directory.",
        "",
        "# The pseudonymization key is read from this file; without a key_file, from the",
        f"# environment variable {KEY_ENV}. A real key belongs in a secret store, never in",
        "# version control, and never on a command line.",
        f"key_file = {_toml(_KEY_FILE)}",
        "",
        "# [first day, day after the last): the end is exclusive.",
        f"period = {_toml([start, end])}",
        f"tz = {_toml(parameters.get('tz') or 'Europe/Brussels')}",
        "# No number about fewer than k devices is released.",
        "k = 30",
        "",
        "[geography]",
        'regions = "geography/regions.parquet"',
        'region_cells = "geography/region_cells.parquet"',
        'zones = "geography/zones.parquet"',
        'zone_cells = "geography/zone_cells.parquet"',
        f"study_area = {_toml(list(geography.study_area))}",
        f"resolution = {geography.resolution}",
        "",
        "[pings]",
        'paths = "pings/*.parquet"',
        "",
        "[columns]",
        "# Your column names, where they differ from the roles subscriber, ts, lat, lon,",
        '# cell and country, such as: ts = "timestamp"',
        "",
        "[release]",
        'bucket = "week"',
        'level = "municipality"',
        'classes = ["visitor"]',
        "",
        "# The operator has this share of each foreign country's visitors, so each roamer",
        "# stands for 1 / share of them; without a factor, roamers' rows have no estimates.",
        f"[release.roaming_factors]\n{_toml('*')} = {round(1 / share, 4)!r}",
        "",
        "# The operator's customers per municipality where they live, from billing.",
        "[release.subscribers]",
    ]
    lines += [f"{_toml(region)} = {count}" for region, count in city.subscribers().items()]
    release_files = ["out/visitors.parquet"]
    lines += ["", "[output]"]
    if has_pyarrow:
        release_files.append("out/visitors.csv")
        lines.append(f"release = {_toml(release_files)}")
        lines.append('report = "out/report.json"')
        lines.append('html = "out/report.html"')
    else:
        lines.append(f"release = {_toml(release_files)}")
        lines.append('report = "out/report.json"')
        lines.append("# The HTML page and CSV need pyarrow: pip install crowdtally[pyarrow]")
        lines.append('# html = "out/report.html"')
    return "\n".join(lines) + "\n"
