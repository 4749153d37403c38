"""The HTML report: well-formed, self-contained, one SVG per plot; and rendered by a real browser.

The browser test needs Debian's chromium (CI: `apt-get install -y chromium`); without it that
test skips and says so, and the html.parser checks below still run.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import struct
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from conftest import make_tiny_benchmark
from zcnas.report import build_report, write_report_files
from zcnas.report.html import BAR_METRICS, expected_svg_count, to_html
from zcnas.run.runner import JobOptions, run_job

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def report_and_path(tmp_path_factory):
    """A real tiny run (params, synflow) on a benchmark with 3 training seeds per architecture."""
    tmp = tmp_path_factory.mktemp("html")
    n = 16
    rng = np.random.default_rng(0)
    probe = make_tiny_benchmark(tmp / "probe.h5", n_archs=n)
    from zcnas.bench import open_benchmark

    acc = open_benchmark(probe).targets["acc"]
    seeds = acc[:, None] + rng.normal(0, 0.5, (n, 3))
    bench = make_tiny_benchmark(
        tmp / "bench.h5", n_archs=n, targets={"acc": seeds.mean(axis=1), "valid": acc}, target_seeds={"acc": seeds}
    )
    store = run_job(bench, tmp / "run.h5", JobOptions(proxies="params,synflow", batch_size=8))
    report = build_report(store, resamples=200)
    paths = write_report_files(report, tmp / "run.h5")
    return report, paths["html"]


class Structure(HTMLParser):
    """Checks nesting while parsing; collects tags, attributes and text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.attributes: list[tuple[str, str, str | None]] = []
        self.svg_titles = 0
        self.text: list[str] = []
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attributes += [(tag, k, v) for k, v in attrs]
        if tag == "title" and self.stack and self.stack[-1] == "svg":
            self.svg_titles += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attributes += [(tag, k, v) for k, v in attrs]

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Structure:
    parser = Structure()
    parser.feed(text)
    parser.close()
    return parser


def test_html_is_well_formed_with_one_svg_per_plot(report_and_path):
    report, path = report_and_path
    page = parse(path.read_text(encoding="utf-8"))
    assert page.doctype
    assert page.errors == [] and page.stack == []
    expected = expected_svg_count(report)
    assert expected == 2 * (len(BAR_METRICS) + 2)  # targets acc, valid x (2 bar charts + 2 scatters)
    assert page.counts["svg"] == expected
    assert page.svg_titles == expected  # every image says what it shows
    points = sum(len(p["targets"][t]["scatter"]["proxy_rank"]) for p in report["proxies"] for t in report["targets"])
    assert page.counts["circle"] == points
    assert page.counts.get("line", 0) > 0 and "noise ceiling" in "".join(page.text)


def test_html_is_self_contained_and_embedded_images_decode(report_and_path):
    _, path = report_and_path
    page = parse(path.read_text(encoding="utf-8"))
    assert "script" not in page.counts
    for tag, name, value in page.attributes:
        if name in ("src", "href", "xlink:href", "data") or (name == "style" and "url(" in (value or "")):
            assert value and value.startswith("data:"), f"<{tag} {name}={value!r}> loads something from outside the page"
            header, _, payload = value.partition(",")
            if ";base64" in header:
                try:
                    data = base64.b64decode(payload, validate=True)
                except binascii.Error:
                    pytest.fail(f"<{tag} {name}> holds base64 that does not decode")
                if "image/png" in header:
                    assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert not (name != "xmlns" and (value or "").startswith(("http://", "https://", "file:"))), (tag, name, value)


def test_names_are_escaped(report_and_path):
    report, _ = report_and_path
    hostile = {**report, "proxies": [dict(report["proxies"][0], proxy="<b>x&y</b>"), *report["proxies"][1:]]}
    page = parse(to_html(hostile))
    assert page.errors == [] and "b" not in page.counts
    assert "<b>x&y</b>" in "".join(page.text)


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium to render the page with (CI: apt-get update && apt-get install -y chromium)")


def run_browser(executable: str, profile, *arguments: str) -> subprocess.CompletedProcess:
    command = [
        executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", *arguments,
    ]
    return subprocess.run(command, capture_output=True, timeout=120)


def test_a_real_browser_renders_the_page(report_and_path, tmp_path):
    executable = browser()
    report, path = report_and_path
    screenshot = tmp_path / "out.png"
    done = run_browser(executable, tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1200,2000", path.as_uri())
    assert screenshot.exists(), done.stderr.decode(errors="replace")[-2000:]
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1200, 2000)
    assert len(png) > 20_000  # a blank page compresses to a few KB; charts and text do not

    dom = run_browser(executable, tmp_path / "profile-dom", "--dump-dom", path.as_uri())
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    rendered = parse(dom.stdout.decode("utf-8"))
    assert rendered.counts.get("svg") == expected_svg_count(report)
    bars = sum(1 for p in report["proxies"] for t in report["targets"] for m in BAR_METRICS if p["targets"][t][m]["value"] is not None)
    assert sum(1 for tag, k, v in rendered.attributes if tag == "rect" and k == "class" and v == "bar") == bars
    assert sum(1 for tag, k, v in rendered.attributes if tag == "line" and k == "class" and v == "noise-ceiling") == len(BAR_METRICS)
