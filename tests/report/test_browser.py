"""The report in a real browser: Debian's chromium, headless, driven by Playwright.

Renders a report built from the fixture inputs (deterministic) from a file:// URL and checks
that the key sections and figures are laid out visibly, that the page logs no console
errors and makes no network request besides loading itself, and takes a full-page
screenshot. `make test` installs chromium when it is missing (Debian package `chromium`);
this test fails, never skips, when it is not there. Playwright only drives the system
browser: it never downloads one.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from leadscore.report.build import build_report, write_report
from tests.report.inputs import make_inputs

pytestmark = pytest.mark.slow  # a real headless browser; `make test-fast` skips it

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
VISIBLE = ["#model", "#headline", "#grades", "#charts", "#drivers", "#examples", "#points",
           "#checks", "#metrics-table", "#grades-model table.heat", "#grades-rules table.heat",
           "#chart-gains svg", "#chart-calibration svg", "#drivers-table",
           "#dependence-pricing_page_view svg", "#examples-table", "#points-table",
           "#checks-table", "#backtest", "#backtest-chart svg", "#backtest-table", "#gate",
           "#gate-decision", "#gate-checks", "#changes", "#changes-drivers", "#changes-mix",
           "#migration-table", "#changes-movers"]


def _chromium() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        pytest.fail("Debian's chromium is not installed: run `make test`, which installs it "
                    "(apt-get install chromium) before the tests", pytrace=False)
    return exe


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def test_report_renders_in_headless_chromium(tmp_path):
    exe = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run `make test` (uv sync installs the "
                    "dev dependencies)", pytrace=False)

    page_path = write_report(build_report(make_inputs(), generated_at="2026-01-01 00:00 UTC"),
                             tmp_path / "report.html")
    url = page_path.resolve().as_uri()
    requests: list[str] = []
    console_errors: list[str] = []
    page_errors: list[str] = []
    shot = tmp_path / "report.png"

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=exe, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900}, timeout=30_000)
        try:
            ctx.on("request", lambda r: requests.append(r.url))
            # nothing but the page itself may load; anything else is recorded above, then cut
            ctx.route("**/*", lambda route: route.continue_() if route.request.url == url
                      else route.abort())
            page = ctx.new_page()
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto(url, wait_until="load", timeout=20_000)

            assert page.title() == "Lead scoring report"
            for sel in VISIBLE:
                loc = page.locator(sel).first
                assert loc.is_visible(), f"{sel} is not visible"
                box = loc.bounding_box()
                assert box and box["width"] > 50 and box["height"] > 20, f"{sel}: {box}"
            # the charts have drawn marks, and the heat-map cell shows the input's rate
            assert page.locator("#chart-gains svg polyline").count() == 3
            assert page.locator("#chart-calibration svg circle").count() >= 12
            assert page.locator("svg.dep").count() == 3
            assert page.locator("#grades-model td.cell").count() == 16
            assert "12.3%" in page.locator('#grades-model td[data-grade="B2"]').inner_text()
            assert page.locator("#backtest-chart svg polyline").count() == 5
            assert page.locator("#gate-checks tr.failed").count() == 2
            assert page.locator("#migration-table td").count() == 256
            assert page.locator('#migration-table td[data-cell="B2-A1"]').inner_text() == "37"
            headline = page.locator(".headline p.big").inner_text()
            assert "61% of conversions" in headline and "43%" in headline
            # the heat map fits the page: no horizontal scrolling at 1200 px
            assert page.evaluate("document.documentElement.scrollWidth") <= 1200
            page.screenshot(path=str(shot), full_page=True)
        finally:
            ctx.close()

    assert not console_errors, console_errors
    assert not page_errors, page_errors
    assert requests == [url], f"unexpected requests: {[r for r in requests if r != url]}"
    width, height = _png_size(shot)
    assert width == 1200 and height > 3000, (width, height)
    assert shot.stat().st_size > 100_000  # a real rendering, not a blank page
