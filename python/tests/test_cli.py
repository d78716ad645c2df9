"""The command line, run as people run it: `python -m crowdtally ...` and the installed
`crowdtally` script, each in a process of its own."""

from __future__ import annotations

import html
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import crowdtally as ct
from crowdtally import cli

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("crowdtally")
RUNNERS = {"module": [sys.executable, "-m", "crowdtally"], "script": [str(SCRIPT)]}
# A synthetic city small enough for a debug build of the core.
SMALL = ["--scale", "0.002", "--days", "7"]
ENV_KEY = "an environment secret 4f1c9e0b7d"
Run = subprocess.CompletedProcess[str]


def environment(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != cli.KEY_ENV}
    env["COLUMNS"] = "100"  # help is wrapped the same way on any terminal
    env.update(extra)
    return env


def crowdtally(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    runner: str = "module",
) -> Run:
    if runner == "script":
        assert SCRIPT.exists(), f"{SCRIPT} is installed with the package (make develop)"
    return subprocess.run(
        [*RUNNERS[runner], *map(str, args)],
        cwd=cwd,
        env=environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def error_line(run: Run) -> str:
    """The one line an error writes to stderr (and no traceback)."""
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("crowdtally: error: "), run.stderr
    return lines[0]


def files_under(directory: Path) -> list[Path]:
    return [path for path in sorted(directory.rglob("*")) if path.is_file()]


def assert_nowhere(secret: bytes, runs: Sequence[Run], files: Sequence[Path]) -> None:
    for run in runs:
        assert secret not in run.stdout.encode(), run.args
        assert secret not in run.stderr.encode(), run.args
    for path in files:
        assert secret not in path.read_bytes(), path


# -- help -----------------------------------------------------------------------------

EXAMPLES = {
    "crowdtally": "crowdtally analyze --config demo/city.toml",
    "analyze": "crowdtally analyze --config demo/city.toml",
    "report": "crowdtally report demo/out/visitors.parquet --html visitors.html",
    "synth": "crowdtally synth --out demo && crowdtally analyze --config demo/city.toml",
}


@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("command", list(EXAMPLES))
def test_help_says_what_a_command_does_with_an_example(command: str, runner: str) -> None:
    args = [] if command == "crowdtally" else [command]
    run = crowdtally(*args, "--help", runner=runner)
    assert run.returncode == 0, run.stderr
    assert f"usage: crowdtally{'' if command == 'crowdtally' else ' ' + command}" in run.stdout
    assert "example:" in run.stdout
    assert EXAMPLES[command] in run.stdout
    statuses = re.findall(r"^  (\d+)\s{2,}\S", run.stdout, flags=re.MULTILINE)
    assert statuses == ["0", "1", "2", "3", "4", "130"]


def test_analyze_help_says_where_the_key_comes_from_and_why_not_an_option() -> None:
    run = crowdtally("analyze", "--help")
    assert "CROWDTALLY_KEY" in run.stdout
    assert "key_file" in run.stdout
    assert "There is no --key" in run.stdout
    assert "history" in run.stdout
    assert "end exclusive" in run.stdout
    assert "--key" not in run.stdout.split("options:")[1].split("example:")[0]


def test_version() -> None:
    run = crowdtally("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"crowdtally {ct.__version__}"


# -- the round trip of the README: synth, analyze, report -------------------------------


def readme_commands() -> list[list[str]]:
    """The `crowdtally` lines of the README's command-line quick start."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start (command line)\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "crowdtally":
            commands.append(words[1:])
    return commands


@dataclass
class Demo:
    root: Path  # the working directory of the commands
    city: Path  # what synth wrote
    runs: dict[str, Run]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The README's commands, run as written but for a smaller synthetic city."""
    root = tmp_path_factory.mktemp("readme")
    runs: dict[str, Run] = {}
    for words in readme_commands():
        args = [*words, *SMALL] if words[0] == "synth" else words
        runs[words[0]] = crowdtally(*args, cwd=root)
    assert list(runs) == ["synth", "analyze", "report"]
    return Demo(root, root / "demo", runs)


def test_synth_writes_a_city_ready_to_analyze(demo: Demo) -> None:
    run = demo.runs["synth"]
    assert run.returncode == 0, run.stderr
    assert "next: crowdtally analyze --config demo/city.toml" in run.stdout
    for name in ("regions", "region_cells", "zones", "zone_cells"):
        assert (demo.city / "geography" / f"{name}.parquet").is_file()
    assert (demo.city / "truth" / "persons.parquet").is_file()
    assert list((demo.city / "pings").glob("part-*.parquet"))
    key = demo.city / "crowdtally.key"
    assert len(key.read_bytes().strip()) >= 16
    if os.name == "posix":
        assert key.stat().st_mode & 0o077 == 0  # readable by its owner only
    config = tomllib.loads((demo.city / "city.toml").read_text(encoding="utf-8"))
    assert config["key_file"] == "crowdtally.key"
    assert config["period"] == ["2026-07-01", "2026-07-08"]  # seven days, end exclusive
    assert config["release"]["roaming_factors"]
    assert config["release"]["subscribers"]["kortrijk"] > 0


def test_analyze_writes_a_release_with_numbers(demo: Demo) -> None:
    run = demo.runs["analyze"]
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert re.search(r"^pings: [\d,]+ read, [\d,]+ kept", run.stdout, flags=re.MULTILINE)
    assert "release: " in run.stdout
    out = demo.city / "out"
    assert f"wrote {Path('demo/out/visitors.parquet')}" in run.stdout
    release = ct.Release.read(out / "visitors.parquet")
    rows = release.to_arrow().to_pylist()
    released = [row for row in rows if not row["suppressed"]]
    assert released
    # Roaming factors and subscribers from the config: every released row is estimated.
    assert all(math.isfinite(row["est_devices"]) for row in released)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report == release.report
    assert report["parameters"]["bucket"] == "week"
    assert report["extrapolation"]["subscribers"] == "given"
    header = (out / "visitors.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.replace('"', "").split(",") == list(ct.release.COLUMNS + ct.release.LABEL_COLUMNS)
    assert "<html" in (out / "report.html").read_text(encoding="utf-8")


def test_report_writes_the_html_of_a_written_release(demo: Demo) -> None:
    run = demo.runs["report"]
    assert run.returncode == 0, run.stderr
    assert "release: " in run.stdout
    page = (demo.root / "visitors.html").read_text(encoding="utf-8")
    assert "<html" in page
    zones = ct.Release.read(demo.city / "out" / "visitors.parquet").report["zones"]
    assert any(html.escape(str(name)) in page for name in zones.values())
    as_json = crowdtally(
        "report", "demo/out/visitors.parquet", "--json", "again.json", cwd=demo.root
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads((demo.root / "again.json").read_text(encoding="utf-8")) == json.loads(
        (demo.city / "out" / "report.json").read_text(encoding="utf-8")
    )


def test_neither_the_key_nor_a_subscriber_id_shows(demo: Demo) -> None:
    key = (demo.city / "crowdtally.key").read_bytes().strip()
    outputs = [*files_under(demo.city / "out"), demo.root / "visitors.html"]
    assert_nowhere(key, list(demo.runs.values()), outputs)
    pings = pq.read_table(demo.city / "pings").column("subscriber")
    for subscriber in pings.drop_null().unique()[:200].to_pylist():
        assert_nowhere(subscriber.encode(), list(demo.runs.values()), outputs)


def test_the_key_can_come_from_the_environment(demo: Demo) -> None:
    text = (demo.city / "city.toml").read_text(encoding="utf-8")
    text = text.replace('key_file = "crowdtally.key"\n', "").replace('"out/', '"out-env/')
    (demo.city / "env.toml").write_text(text, encoding="utf-8")
    run = crowdtally(
        "analyze",
        "--config",
        "demo/env.toml",
        cwd=demo.root,
        env=environment(CROWDTALLY_KEY=ENV_KEY),
    )
    assert run.returncode == 0, run.stderr
    assert (demo.city / "out-env" / "visitors.parquet").is_file()
    assert_nowhere(ENV_KEY.encode(), [run], files_under(demo.city / "out-env"))


# -- exit statuses and their messages ---------------------------------------------------


def broken_config(demo: Demo, name: str, old: str, new: str) -> str:
    """A copy of the demo's config with one change, next to it (its paths are relative)."""
    text = (demo.city / "city.toml").read_text(encoding="utf-8")
    assert old in text
    (demo.city / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return f"demo/{name}"


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_a_missing_config_file_is_a_usage_error(tmp_path: Path, runner: str) -> None:
    run = crowdtally("analyze", "--config", "city.toml", cwd=tmp_path, runner=runner)
    assert run.returncode == cli.EXIT_USAGE == 2
    assert "cannot read the config file `city.toml`" in error_line(run)


def test_a_misspelt_config_key_is_named(demo: Demo) -> None:
    config = broken_config(demo, "misspelt.toml", 'bucket = "week"', 'buckett = "week"')
    run = crowdtally("analyze", "--config", config, cwd=demo.root)
    assert run.returncode == 2
    line = error_line(run)
    assert "demo/misspelt.toml" in line
    assert "`release.buckett` is not a key crowdtally knows" in line
    assert "did you mean `release.bucket`?" in line


def test_a_bad_config_value_names_its_key(demo: Demo) -> None:
    config = broken_config(demo, "fortnight.toml", 'bucket = "week"', 'bucket = "fortnight"')
    run = crowdtally("analyze", "--config", config, cwd=demo.root)
    assert run.returncode == 2
    line = error_line(run)
    assert "`release.bucket`" in line
    assert "fortnight" in line


def test_a_config_value_of_the_wrong_type_names_its_key(demo: Demo) -> None:
    config = broken_config(demo, "k.toml", "k = 30", 'k = "thirty"')
    run = crowdtally("analyze", "--config", config, cwd=demo.root)
    assert run.returncode == 2
    assert "`k` must be an integer, got a string" in error_line(run)


def test_invalid_toml_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "city.toml").write_text("period = [\n", encoding="utf-8")
    run = crowdtally("analyze", "--config", "city.toml", cwd=tmp_path)
    assert run.returncode == 2
    assert "city.toml: is not valid TOML" in error_line(run)


def test_a_key_in_the_config_is_refused_without_being_shown(tmp_path: Path) -> None:
    secret = "written where it must not be 1234"
    (tmp_path / "city.toml").write_text(f'key = "{secret}"\n', encoding="utf-8")
    run = crowdtally("analyze", "--config", "city.toml", cwd=tmp_path)
    assert run.returncode == 2
    line = error_line(run)
    assert "`key` does not belong in a config file" in line
    assert secret not in run.stderr + run.stdout


def test_a_key_on_the_command_line_is_refused_without_being_shown(demo: Demo) -> None:
    secret = "typed where it must not be 5678"
    for args in (["--key", secret], [f"--key={secret}"]):
        run = crowdtally("analyze", "--config", "demo/city.toml", *args, cwd=demo.root)
        assert run.returncode == 2
        assert "there is no --key option" in error_line(run)
        assert secret not in run.stderr + run.stdout


def test_a_missing_key_names_the_environment_variable(demo: Demo) -> None:
    config = broken_config(demo, "no-key.toml", 'key_file = "crowdtally.key"\n', "")
    run = crowdtally("analyze", "--config", config, cwd=demo.root)
    assert run.returncode == 2
    line = error_line(run)
    assert "no key: set the environment variable CROWDTALLY_KEY" in line
    assert "key_file" in line


def test_a_short_key_is_refused_without_being_shown(demo: Demo) -> None:
    config = broken_config(demo, "short-key.toml", 'key_file = "crowdtally.key"\n', "")
    short = "sesame-9f3a"
    env = environment(CROWDTALLY_KEY=short)
    run = crowdtally("analyze", "--config", config, cwd=demo.root, env=env)
    assert run.returncode == 2
    line = error_line(run)
    assert "CROWDTALLY_KEY" in line
    assert "at least 16 bytes" in line
    assert short not in run.stderr + run.stdout


def test_a_missing_key_file_names_key_file(demo: Demo) -> None:
    config = broken_config(demo, "lost-key.toml", '"crowdtally.key"', '"lost.key"')
    run = crowdtally("analyze", "--config", config, cwd=demo.root)
    assert run.returncode == 2
    assert "`key_file`: cannot read" in error_line(run)


def test_a_missing_pings_file_is_an_input_error(demo: Demo) -> None:
    config = broken_config(demo, "no-pings.toml", '"pings/*.parquet"', '"pings/missing.parquet"')
    run = crowdtally("analyze", "--config", config, cwd=demo.root)
    assert run.returncode == cli.EXIT_INPUT == 3
    line = error_line(run)
    assert "`pings.paths`" in line
    assert "missing.parquet" in line


def test_a_glob_matching_nothing_is_an_input_error(demo: Demo) -> None:
    config = broken_config(demo, "no-match.toml", '"pings/*.parquet"', '"nowhere/*.parquet"')
    run = crowdtally("analyze", "--config", config, cwd=demo.root)
    assert run.returncode == 3
    assert "`pings.paths`" in error_line(run)


def test_a_missing_geography_file_is_an_input_error(demo: Demo) -> None:
    config = broken_config(demo, "no-zones.toml", '"geography/zones.parquet"', '"zones.parquet"')
    run = crowdtally("analyze", "--config", config, cwd=demo.root)
    assert run.returncode == 3
    assert "`geography.zones`: no such file" in error_line(run)


def test_a_bad_geography_is_an_input_error_naming_its_key(demo: Demo) -> None:
    config = broken_config(demo, "atlantis.toml", '["kortrijk"]', '["atlantis"]')
    run = crowdtally("analyze", "--config", config, cwd=demo.root)
    assert run.returncode == 3
    line = error_line(run)
    assert "`geography.study_area`" in line
    assert "atlantis" in line


def test_a_missing_release_file_is_an_input_error(tmp_path: Path) -> None:
    run = crowdtally("report", "missing.parquet", "--html", "out.html", cwd=tmp_path)
    assert run.returncode == 3
    assert "missing.parquet" in error_line(run)
    assert not (tmp_path / "out.html").exists()


def test_a_ledger_refusal_exits_with_4(demo: Demo) -> None:
    ledger = "k = 30\nledger = 'ledger.json'"
    weekly = broken_config(demo, "weekly.toml", "k = 30", ledger)
    text = (demo.city / "weekly.toml").read_text(encoding="utf-8")
    text = text.replace('bucket = "week"', 'bucket = "day"').replace('"out/', '"out-daily/')
    (demo.city / "daily.toml").write_text(text, encoding="utf-8")
    first = crowdtally("analyze", "--config", weekly, cwd=demo.root)
    assert first.returncode == 0, first.stderr
    second = crowdtally("analyze", "--config", "demo/daily.toml", cwd=demo.root)
    assert second.returncode == cli.EXIT_LEDGER == 4
    line = error_line(second)
    assert "ledger" in line
    assert "`release.allow_differencing = true`" in line
    assert not (demo.city / "out-daily").exists()


def test_an_unexpected_error_exits_with_1_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: Any) -> ct.Release:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(ct.Release, "read", broken)
    assert cli.main(["report", "visitors.parquet"]) == cli.EXIT_UNEXPECTED == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("crowdtally: error: unexpected RuntimeError: something nobody")
    assert "--debug" in stderr
    assert "Traceback" not in stderr
    for args in (["--debug", "report", "v.parquet"], ["report", "v.parquet", "--debug"]):
        assert cli.main(args) == 1
        assert "Traceback" in capsys.readouterr().err


def test_synth_keeps_what_is_there_unless_forced(tmp_path: Path) -> None:
    args = ["synth", "--persons", "50", "--days", "2", "--out", "small"]
    assert crowdtally(*args, cwd=tmp_path).returncode == 0
    key = (tmp_path / "small" / "crowdtally.key").read_bytes()
    again = crowdtally(*args, cwd=tmp_path)
    assert again.returncode == 2
    assert "--force" in error_line(again)
    forced = crowdtally(*args, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "small" / "crowdtally.key").read_bytes() == key


# -- a city of one's own: GeoJSON or CSV geography, column names, opt-out -----------------

GROTE_MARKT = (50.828, 3.265)
REGIONS_CSV = "region_id,level,parent_id,population\nBE,country,,\nkortrijk,municipality,BE,80000\n"


def feature(properties: dict[str, Any], *corners: tuple[float, float]) -> dict[str, Any]:
    ring = [list(corner) for corner in (*corners, corners[0])] if corners else None
    shape = {"type": "Polygon", "coordinates": [ring]} if ring else None
    return {"type": "Feature", "properties": properties, "geometry": shape}


def own_city(directory: Path, geography: str, *, k: int = 2, end: str = "2026-07-08") -> None:
    """Four phones at the Grote Markt on 1 July (the last opted out), one of them again
    on 2 July, a geography and a config for them."""
    lat, lon = GROTE_MARKT
    ids = ["206010000000001", "206010000000002", "206010000000003", "206010000000009"]
    subscribers = [id_ for id_ in ids for _ in range(2)] + [ids[0]]
    times = ["2026-07-01 10:00:00", "2026-07-01 11:30:00"] * 4 + ["2026-07-02 09:00:00"]
    pings = {"imsi": subscribers, "timestamp": times, "lat": [lat] * 9, "lon": [lon] * 9}
    pq.write_table(pa.table(pings), directory / "pings.parquet")
    (directory / "opt_out.txt").write_text(ids[-1] + "\n", encoding="utf-8")
    if geography == "geojson":
        regions = [
            feature({"region_id": "BE", "level": "country", "parent_id": None}),
            feature(
                {"region_id": "kortrijk", "level": "municipality", "parent_id": "BE"}
                | {"population": 80_000},
                *[(3.20, 50.78), (3.34, 50.78), (3.34, 50.87), (3.20, 50.87)],
            ),
        ]
        zones = [
            feature(
                {"zone_id": "grote-markt", "name": "Grote Markt", "category": "culture"},
                *[(3.262, 50.826), (3.268, 50.826), (3.268, 50.830), (3.262, 50.830)],
            )
        ]
        for name, features in (("regions", regions), ("zones", zones)):
            collection = {"type": "FeatureCollection", "features": features}
            (directory / f"{name}.geojson").write_text(json.dumps(collection), encoding="utf-8")
        tables = 'regions = "regions.geojson"\nzones = "zones.geojson"\n'
    else:
        csv_files = {
            "regions": REGIONS_CSV,
            "region_cells": "cell,region_id\n87194d3a0ffffff,kortrijk\n",
            "zones": "zone_id,name,category\ngrote-markt,Grote Markt,culture\n",
            "zone_cells": "zone_id,cell\ngrote-markt,89194d3a063ffff\n",
        }
        for name, text in csv_files.items():
            (directory / f"{name}.csv").write_text(text, encoding="utf-8")
        tables = "".join(f'{name} = "{name}.csv"\n' for name in csv_files)
    (directory / "city.toml").write_text(
        f"""\
period = ["2026-07-01", "{end}"]
k = {k}
opt_out_file = "opt_out.txt"

[geography]
{tables}study_area = "kortrijk"

[pings]
paths = "pings.parquet"

[columns]
subscriber = "imsi"
ts = "timestamp"

[release]
bucket = "day"
subscribers = {{ kortrijk = 20000 }}

[output]
release = ["out/visitors.parquet", "out/visitors.csv"]
""",
        encoding="utf-8",
    )


@pytest.mark.parametrize("geography", ["geojson", "csv"])
def test_a_city_of_ones_own(tmp_path: Path, geography: str) -> None:
    own_city(tmp_path, geography)
    run = crowdtally(
        "analyze", "--config", tmp_path / "city.toml", env=environment(CROWDTALLY_KEY=ENV_KEY)
    )
    assert run.returncode == 0, run.stderr
    release = ct.Release.read(tmp_path / "out" / "visitors.parquet")
    assert release.report["pings"]["dropped"]["opt_out"] == 2
    rows = [row for row in release.to_arrow().to_pylist() if not row["suppressed"]]
    totals = [row for row in rows if row["zone"] == "grote-markt" and row["origin"] == "*"]
    assert len(totals) == 1
    assert totals[0]["bucket_start"].startswith("2026-07-01")
    assert totals[0]["devices"] == 3
    assert totals[0]["est_devices"] == pytest.approx(12.0)  # 80,000 people, 20,000 customers
    assert (tmp_path / "out" / "visitors.csv").is_file()
    assert_nowhere(b"206010000000009", [run], files_under(tmp_path / "out"))


def test_a_release_with_every_group_suppressed_is_a_warning(tmp_path: Path) -> None:
    own_city(tmp_path, "csv", k=30)
    run = crowdtally(
        "analyze", "--config", tmp_path / "city.toml", env=environment(CROWDTALLY_KEY=ENV_KEY)
    )
    assert run.returncode == 0, run.stderr
    assert "crowdtally: warning: every group is suppressed" in run.stderr


def test_pings_after_the_exclusive_end_are_a_warning(tmp_path: Path) -> None:
    own_city(tmp_path, "csv", end="2026-07-02")  # the 2nd of July is outside
    run = crowdtally(
        "analyze", "--config", tmp_path / "city.toml", env=environment(CROWDTALLY_KEY=ENV_KEY)
    )
    assert run.returncode == 0, run.stderr
    assert "outside_period 1" in run.stdout
    assert "whose end is exclusive" in run.stderr


# -- the README ---------------------------------------------------------------------------


def test_readme_config_example_is_a_valid_config(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, flags=re.DOTALL)
    assert len(blocks) == 1
    (tmp_path / "city.toml").write_text(blocks[0], encoding="utf-8")
    # Every key is known and of its type; the files it names are not here to read.
    settings = cli._read_config(str(tmp_path / "city.toml"))
    assert settings.columns == {"subscriber": "imsi", "ts": "timestamp"}
    assert settings.geography.geojson
    assert settings.config["period"] == ("2026-07-01", "2026-10-01")


def test_readme_quick_start_releases_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start (Python)\n", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL))
    monkeypatch.chdir(tmp_path)  # it writes a release and a report
    names: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), names)
    capsys.readouterr()
    prepared, release = names["prepared"], names["release"]
    # Its cells contain its pings: every kept ping is in Kortrijk and at the Grote Markt.
    located = prepared.to_arrow().to_pylist()
    assert len(located) == 4
    assert {row["region"] for row in located} == {"kortrijk"}
    assert all("grote-markt" in row["zones"] for row in located)
    released = [row for row in release.to_arrow().to_pylist() if not row["suppressed"]]
    assert released
    assert all(math.isfinite(row["est_devices"]) for row in released)
    # The polygons hold the same pings.
    study = ct.Study(names["from_polygons"], names["config"], columns={"ts": "timestamp"})
    rows = study.prepare(names["pings"]).to_arrow().to_pylist()
    assert all("grote-markt" in row["zones"] for row in rows)
