"""The HTML report in a real browser (headless Chromium): the demo's pages load without a
script error or a console error, every image loads, and nothing is wider than the page,
at a desktop's width and at a narrow one. The checker itself is tested on pages broken
on purpose, so that a page it passes is a page that works.

The check needs no Python package: a copy of the page gets a script, first in its head,
that records errors, console errors, images that did not load and elements wider than
the page into an element of the DOM; Chromium runs the page (``--dump-dom``) and prints
the DOM, from which the test reads that element.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import crowdtally as ct
from crowdtally import synth

CHROMIUM = shutil.which("chromium")


@pytest.fixture(autouse=True)
def _chromium_is_installed() -> None:
    # A missing browser fails rather than skips: the report must be seen to render.
    assert CHROMIUM is not None, "Debian's chromium is needed: `make chromium` installs it"


# Widths of a desktop browser and of a narrow window (a tablet held upright).
WIDTHS = (1280, 700)

CHECKER = r"""<script>
(function () {
  "use strict";
  var problems = [];
  function show() {
    var out = document.getElementById("browser-check");
    if (!out) {
      out = document.createElement("pre");
      out.id = "browser-check";
      (document.body || document.documentElement).appendChild(out);
    }
    out.textContent = JSON.stringify(problems);
  }
  function record(problem) {
    problems.push(problem);
    if (document.readyState === "complete") show();
  }
  // Resource errors do not bubble: they reach window only while capturing.
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && target.tagName) {
      record("did not load: <" + target.tagName.toLowerCase() + "> " +
        (target.alt || String(target.src || target.href || "").slice(0, 80)));
    } else {
      record("error: " + event.message);
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    record("unhandled rejection: " + event.reason);
  });
  var consoleError = console.error;
  console.error = function () {
    record("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
  // Inside a box that clips or scrolls and itself fits the page, a wide element is
  // not wider than the page: the box scrolls.
  function contained(element, width) {
    for (var box = element.parentElement; box && box !== document.body; box = box.parentElement) {
      if (getComputedStyle(box).overflowX !== "visible") {
        var rect = box.getBoundingClientRect();
        return rect.left >= -0.5 && rect.right <= width + 0.5;
      }
    }
    return false;
  }
  window.addEventListener("load", function () {
    var width = document.documentElement.clientWidth;
    Array.prototype.forEach.call(document.images, function (image) {
      if (!image.complete || image.naturalWidth === 0) {
        record("image did not load: " + (image.alt || image.src.slice(0, 80)));
      }
    });
    if (document.scripts.length > 1) {
      record("the page has " + (document.scripts.length - 1) + " script(s) of its own");
    }
    var wide = [];
    Array.prototype.forEach.call(document.body.querySelectorAll("*"), function (element) {
      var rect = element.getBoundingClientRect();
      if (rect.right <= width + 0.5 && rect.left >= -0.5) return;
      if (contained(element, width)) return;
      if (wide.some(function (outer) { return outer.contains(element); })) return;
      wide.push(element);
      record("wider than the page (" + Math.round(rect.right) + " > " + width + " px): <" +
        element.tagName.toLowerCase() + (element.className ? " class=" + element.className : "") +
        ">");
    });
    if (document.documentElement.scrollWidth > width) {
      record("the page scrolls sideways: " + document.documentElement.scrollWidth + " > " +
        width + " px");
    }
    show();
  });
})();
</script>"""


def browser_problems(page: str, directory: Path, width: int) -> list[str]:
    """What the checker found when Chromium ran the page in a window ``width`` wide."""
    assert CHROMIUM is not None
    checked = directory / f"checked-{width}.html"
    head = page.find("<head>")
    at = head + len("<head>") if head >= 0 else 0
    checked.write_text(page[:at] + CHECKER + page[at:], encoding="utf-8")
    ran = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={directory / 'chromium-profile'}",
            f"--window-size={width},900",
            "--virtual-time-budget=10000",
            "--dump-dom",
            checked.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', ran.stdout, flags=re.DOTALL)
    assert found is not None, f"the checker did not report: {ran.stderr[-3000:]}"
    problems: list[str] = json.loads(html.unescape(found.group(1)))
    return problems


# -- the checker, on pages broken on purpose -------------------------------------------------

CLEAN = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>t</title>
<style>.scroll { overflow-x: auto; max-width: 100%; }</style></head><body>{body}</body></html>
"""
WIDE_TABLE = "<table><tr><td style='min-width: 3000px'>a wide table</td></tr></table>"
# The smallest PNG there is: one transparent pixel.
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def page(body: str) -> str:
    return CLEAN.replace("{body}", body)


def test_the_checker_passes_a_page_that_works(tmp_path: Path) -> None:
    body = f"<p>text</p><img alt='pixel' src='data:image/png;base64,{PIXEL}'>"
    body += f"<div class='scroll'>{WIDE_TABLE}</div>"
    assert browser_problems(page(body), tmp_path, 800) == []


@pytest.mark.parametrize(
    ("body", "problem"),  # the problem as a regular expression
    [
        ("<img alt='broken' src='data:image/png;base64,AAAA'>", "image did not load: broken"),
        ("<img alt='missing' src='no-such-file.png'>", "did not load: <img> missing"),
        (WIDE_TABLE, r"wider than the page \(30\d\d > 800 px\): <table>"),
        ("<script>throw new Error('boom')</script>", "error: Uncaught Error: boom"),
        ("<script>console.error('it broke')</script>", "console.error: it broke"),
        (
            "<script>setTimeout(function () { throw new Error('later'); }, 500)</script>",
            r"error: Uncaught Error: later",
        ),
    ],
    ids=["broken image", "missing image", "wide table", "error", "console error", "late error"],
)
def test_the_checker_fails_a_broken_page(tmp_path: Path, body: str, problem: str) -> None:
    problems = browser_problems(page(body), tmp_path, 800)
    assert any(re.match(problem, found) for found in problems), problems


# -- the demo's reports ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The reports of examples/kortrijk.py at a small scale (its quick run), with the
    maps, where visitors spend and how unique the traces are: the period's and the daily
    release's pages, and the city."""
    city = synth.scenario(scale=0.002, days=14, seed=2026)
    config = city.config()
    prepared = ct.prepare(city.pings, city.geography, config)
    common: dict[str, Any] = {
        "level": "municipality",
        "roaming_factors": {code: 1 / 0.3 for code in ("FR", "NL", "DE")},
    }
    directory = tmp_path_factory.mktemp("demo")
    audit = ct.risk(prepared, points=(1, 2, 3, 4))
    pages = {}
    for bucket in ("period", "day"):
        release = ct.analyze(prepared, city.geography, config, bucket=bucket, **common)
        spend = ct.spend(release, city.payments["payments"], city.geography, config)
        path = release.report_html(
            directory / f"{bucket}.html", geography=city.geography, spend=spend, risk=audit
        )
        pages[bucket] = path.read_text(encoding="utf-8")
    return {"city": city, "pages": pages}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("bucket", ["period", "day"])
def test_the_demo_report_works_in_a_browser(
    demo: dict[str, Any], tmp_path: Path, bucket: str, width: int
) -> None:
    assert browser_problems(demo["pages"][bucket], tmp_path, width) == []


def test_the_demo_report_shows_no_subscriber(demo: dict[str, Any]) -> None:
    subscribers = pa.table(demo["city"].pings)["subscriber"].unique().to_pylist()
    assert subscribers
    for text in demo["pages"].values():
        shown = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
        assert not [s for s in subscribers[:500] if str(s) in shown]


def test_the_demo_report_shows_where_visitors_spend(demo: dict[str, Any]) -> None:
    merchants = pa.table(demo["city"].payments["merchants"])["merchant_id"].to_pylist()
    assert merchants
    for text in demo["pages"].values():
        section = text[text.index("<section id='spend'>") :]
        assert section.startswith("<section id='spend'>\n<h2>Where visitors spend</h2>")
        assert "Card spend by zone" in section
        assert "withheld because one shop dominates" in section
        assert not [m for m in merchants if str(m) in text]


def test_the_demo_report_says_how_unique_the_traces_are(demo: dict[str, Any]) -> None:
    for text in demo["pages"].values():
        section = text[text.index("<section id='risk'>") :]
        assert section.startswith(
            "<section id='risk'>\n<h2>How unique are the traces behind these figures?</h2>"
        )
        assert "With 4 places and hours of their own trace" in section
        assert "What it means for a data protection impact assessment" in section
        # Before the appendix.
        assert "<section id='appendix'>" in section


def test_the_browser_check_catches_a_broken_report(demo: dict[str, Any], tmp_path: Path) -> None:
    report = demo["pages"]["day"]
    # An image whose data is damaged, and the tables out of their scrolling boxes.
    broken = re.sub(
        r"data:image/png;base64,[A-Za-z0-9+/=]{40}", "data:image/png;base64,AAAA", report, count=1
    )
    broken = broken.replace("class='scroll", "class='plain")
    problems = browser_problems(broken, tmp_path, 1280)
    assert any(p.startswith("image did not load") for p in problems), problems
    assert any(p.startswith("wider than the page") and "<table>" in p for p in problems), problems
    assert any(p.startswith("the page scrolls sideways") for p in problems), problems
