"""The report in a real browser: Debian's chromium, headless, driven by Playwright over loopback."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from reporting.html import write_range_report
from reporting.tables import load_published, trailing_days
from tests.test_report import DAY, TAX, render, synthetic_day

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # skipped below with the reason
    expect = sync_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOAD_BUDGET_S = 2.0
# Set by the page's script after its first rendered frame. (Waiting on a locator, not a JS
# predicate: the page's Content-Security-Policy forbids the eval that wait_for_function uses.)
READY = "html[data-ready='1']"


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        pytest.skip(
            "Python Playwright is not installed (pip install playwright==1.65.2, part of the dev extra)"
        )
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian chromium is not installed at {CHROMIUM} (apt-get install -y chromium; `make test` does this as root)"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[Path, str]]:
    """A folder under tmp_path served on 127.0.0.1 (an ephemeral port) by a thread."""
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def page(browser):
    """A fresh page that records page errors and refuses (and records) any request off the loopback host."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.errors, page.offsite = [], []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))

    def guard(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            page.offsite.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    yield page
    context.close()


def _publish(root: Path, day: str, html: str) -> str:
    folder = root / "reports" / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.html").write_text(html, encoding="utf-8")
    return f"reports/{day}/report.html"


def test_day_report_in_the_browser(served, page, tmp_path):
    root, base_url = served
    for back, seed in ((3, 1), (1, 2)):
        day = trailing_days(DAY, back)[0]
        synthetic_day(day, n_base=30, seed=seed).write(root / "reports" / day)
    today = synthetic_day(
        DAY,
        n_base=30,
        seed=3,
        flagged={3: ["new cluster", "concern 4.6 at or above 4"], 12: ["grew x3.2 over the trailing mean"]},
    )
    html = render(today, load_published(root / "reports", trailing_days(DAY, 13)))
    page.goto(f"{base_url}/{_publish(root, DAY, html)}")
    page.locator(READY).wait_for(state="attached")

    # The flagged list comes first and shows both flagged clusters with their reasons and a sparkline.
    flagged = page.locator("#flags .flagged-item")
    assert flagged.count() == 2
    texts = flagged.all_inner_texts()
    assert any("Base topic 3" in t and "new cluster" in t for t in texts)
    assert any("Base topic 12" in t and "grew x3.2" in t for t in texts)
    assert flagged.first.locator("svg.spark path.line").count() >= 1
    assert page.locator("#flags").bounding_box()["y"] < page.locator("#hierarchy").bounding_box()["y"]

    # Expanding a top-level node shows its children; expanding a mid node shows base clusters.
    mid = page.locator("#n-10000")
    assert page.locator("#n-20000").is_visible() and not mid.is_visible()
    page.locator("#n-20000 > details > summary").click()
    mid.wait_for(state="visible")
    base = page.locator("#n-10000 > details > ul > li.n").first
    assert not base.is_visible()
    page.locator("#n-10000 > details > summary").click()
    base.wait_for(state="visible")
    assert "Base topic" in base.inner_text()

    # Clicking a map circle opens the tree down to that cluster.
    page.locator("#n-20000 > details > summary").click()  # close again
    page.locator('svg.map circle[data-reveal="12"]').dispatch_event("click")
    page.locator("#n-12").wait_for(state="visible")

    # The filter keeps matching clusters and their ancestors.
    page.fill("#filter", "base topic 12")
    expect(page.locator("#matches")).to_have_text("1 matching")
    assert page.locator("#n-12").is_visible() and not page.locator("#n-13").is_visible()

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert page.errors == [] and page.offsite == []


def test_range_report_in_the_browser(served, page):
    root, base_url = served
    for i, day in enumerate(trailing_days(DAY, 3) + [DAY]):
        synthetic_day(day, n_base=20, seed=i, flagged={i: [f"reason {i}"]}).write(root / "reports" / day)
    path = write_range_report(root / "reports", trailing_days(DAY, 3)[0], DAY, TAX)
    page.goto(f"{base_url}/reports/{path.name}")
    assert page.locator("#days tr.day-row").count() == 4
    assert page.locator("#flags .flagged-item").count() == 4
    assert page.locator(".cat-trend svg.spark").count() == len(TAX.codes)
    assert page.errors == [] and page.offsite == []


def test_a_day_with_2000_released_clusters_loads_fast(served, page):
    root, base_url = served
    today = synthetic_day(
        DAY,
        n_base=2000,
        n_top=12,
        n_mid=120,
        seed=7,
        flagged={i: ["new cluster"] for i in range(0, 2000, 97)},
    )
    started = time.perf_counter()
    html = render(today)
    render_s = time.perf_counter() - started
    url = f"{base_url}/{_publish(root, DAY, html)}"
    page.goto(f"{base_url}/reports/")  # warm the connection, not the page
    started = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.locator(READY).wait_for(state="attached")
    load_s = time.perf_counter() - started
    assert page.locator("svg.map circle").count() == 2000
    assert page.locator("li.n.l0").count() == 2000
    print(
        f"2,000 clusters: render {render_s:.2f} s, {len(html) / 1e6:.2f} MB, load to first render {load_s:.2f} s"
    )
    assert load_s < LOAD_BUDGET_S, f"took {load_s:.2f} s to load and render"
    assert page.errors == [] and page.offsite == []
