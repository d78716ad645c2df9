"""Every Python example, the notebook and the README's Python snippet run."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Scripts whose default run is a demo at full size take arguments for a quick run, and
# say what they print and which files they write.
QUICK_ARGS = {
    "kortrijk.py": ["--scale", "0.002", "--days", "10"],
    "dp_error.py": ["--scale", "0.002", "--days", "10", "--repeats", "1"],
}
PRINTS = {"kortrijk.py": "city-centre", "dp_error.py": "| days x province | 2 |"}
WRITES = {
    "kortrijk.py": [
        "report.html",
        "visitors_daily.parquet",
        "visitors_period.csv",
        "spend.parquet",
    ],
    "dp_error.py": ["dp_error.md"],
}


@pytest.mark.parametrize("script", sorted((ROOT / "examples").glob("*.py")), ids=str)
def test_example_runs(
    script: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = QUICK_ARGS.get(script.name)
    if args is None:
        runpy.run_path(str(script), run_name="__main__")
        return
    monkeypatch.setattr(sys, "argv", [str(script), *args, "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == 0
    assert PRINTS[script.name] in capsys.readouterr().out
    for name in WRITES[script.name]:
        assert (tmp_path / name).is_file(), name


def test_notebook_runs() -> None:
    import nbclient
    import nbformat

    # nbformat's reader is not annotated.
    notebook = nbformat.read(  # type: ignore[no-untyped-call]
        ROOT / "examples" / "kortrijk.ipynb", as_version=4
    )
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3")
    client.execute(cwd=str(ROOT / "examples"))
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = "".join(o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {}))
    assert "city-centre" in html
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # the three figures


PANDAS_WARNING = "ignore:PySpark does not yet fully support pandas:FutureWarning"


def test_readme_python_snippets_run(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert snippets
    # The snippets read as one session (later ones use earlier names), in a process of
    # their own as a reader's would be: the Spark section starts its own local Spark,
    # whose workers inherit that process's environment. Files land in a temporary
    # directory.
    session = tmp_path / "readme.py"
    checks = "\nassert len(tables) == 2\nprint('README ran')\n"
    # The release's warnings about its data are meant to be seen, not to stop it.
    prelude = (
        "import warnings\nimport crowdtally\n"
        "warnings.simplefilter('default', crowdtally.CrowdtallyWarning)\n"
    )
    session.write_text(prelude + "\n".join(snippets) + checks, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"CROWDTALLY_KEY", "PYSPARK_PYTHON"}}
    ran = subprocess.run(
        # Warnings fail it, as in the tests (but pyspark's own about pandas versions).
        [
            sys.executable,
            "-W",
            "error",
            "-W",
            PANDAS_WARNING,
            str(session),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-4000:]
    assert "README ran" in ran.stdout
    # As the README says, the quick start's null id is warned of.
    assert "CrowdtallyWarning: 16.7 % of pings were dropped as bad_subscriber" in ran.stderr
