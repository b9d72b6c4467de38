"""Fixtures for the browser tests: the built website served locally, and headless Chromium.

The tests drive Debian's Chromium (``tools/install_browser.sh`` installs it) through
Playwright's Python package with ``executable_path``; ``playwright install`` is never run
and nothing is downloaded. They are skipped, with the reason, when the book has not been
built (``jupyter-book build .``), when Chromium is missing, or when Playwright is not
installed.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import threading
from collections import OrderedDict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


def _skip_reason(needs_site: bool = True):
    if needs_site and not (HTML / "index.html").exists():
        return f"no built website at {HTML}: run `jupyter-book build .` first"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: run tools/install_browser.sh"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright's Python package is not installed: pip install -e '.[dev]'"
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "browser" in item.keywords:  # every test in this folder
            reason = _skip_reason(needs_site="site" in item.fixturenames
                                  or "loaded" in item.fixturenames)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
    # the browser tests run page by page, so each shared page (``loaded``) is loaded once
    places = [i for i, item in enumerate(items) if Path(item.path).is_relative_to(HERE)]
    ordered = [items[i] for i in sorted(places, key=lambda i: _page_key(items[i], i))]
    for i, item in zip(places, ordered):
        items[i] = item


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="session")
def site():
    """Base URL of ``_build/html`` served on 127.0.0.1 by a background http.server."""
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _local_mathjax():
    """A local copy of MathJax 3 (``es5`` folder) if one is installed, else ``None``.

    The ``sphinx-mathjax-offline`` package ships MathJax 3; with it the math test runs
    offline by serving the CDN's MathJax from disk.
    """
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    return folder if (folder / "tex-mml-chtml.js").exists() else None


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    """A fresh Chromium profile (its own ``--user-data-dir``), shared by all tests."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


def _watched_tab(context, site: str):
    """A new tab that records ``tab.problems``: console errors, page errors, failed
    requests, HTTP errors and any request that leaves the local server (the site must work
    offline). The CDN's MathJax is served from disk when a local copy is installed."""
    tab = context.new_page()
    tab.problems = []
    mathjax = _local_mathjax()
    if mathjax is not None:
        prefix = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/"

        def serve_local(route):
            path = mathjax / route.request.url[len(prefix):].split("?")[0]
            if path.is_file():
                route.fulfill(path=str(path))
            else:
                route.continue_()

        tab.route(prefix + "**", serve_local)
    tab.on("console", lambda m: m.type == "error" and tab.problems.append(
        ("console", m.text, m.location.get("url", ""))))
    tab.on("pageerror", lambda e: tab.problems.append(("pageerror", str(e), "")))
    tab.on("requestfailed", lambda r: tab.problems.append(
        ("requestfailed", r.failure or "", r.url)))
    tab.on("response", lambda r: r.status >= 400 and tab.problems.append(
        ("http", str(r.status), r.url)))
    local = (site, "data:", "blob:", "about:")
    tab.on("request", lambda r: r.url.startswith(local) or tab.problems.append(
        ("external", "a request outside the site", r.url)))
    return tab


def load(tab, site: str, name: str, viewport: dict | None = None):
    """Open page ``name`` of the site in ``tab`` (at ``viewport``) and wait until it has
    settled: network idle, every formula typeset by MathJax, late theme scripts run."""
    if viewport is not None:
        tab.set_viewport_size(viewport)
    tab.goto(f"{site}/{name}.html", wait_until="load")
    tab.wait_for_load_state("networkidle")
    if tab.locator("article .math").count():
        tab.wait_for_function(
            "document.querySelectorAll('article .math').length === "
            "document.querySelectorAll('article .math mjx-container').length", timeout=30_000)
    tab.wait_for_timeout(300)  # course.js marks wide formulas once MathJax is done
    return tab


@pytest.fixture
def page(browser_context, site):
    """A new tab of its own, for a test that clicks, navigates or changes the page; with
    ``page.problems`` (see :func:`_watched_tab`)."""
    tab = _watched_tab(browser_context, site)
    yield tab
    tab.close()


class _LoadedPages:
    """Pages loaded once and shared by the tests that only read them.

    Loading a chapter page (images, MathJax) takes one to two seconds and most tests only
    read the DOM, so each (page, viewport) is loaded once; the tests are ordered by page
    (see :func:`pytest_collection_modifyitems`), so a few open tabs suffice. A test that
    clicks, scrolls for good or changes the page uses the ``page`` fixture instead.
    """

    def __init__(self, context, site: str, keep: int = 4):
        self.context, self.site, self.keep = context, site, keep
        self.tabs = OrderedDict()

    def __call__(self, name: str, viewport: dict):
        key = (name, viewport["width"], viewport["height"])
        if key in self.tabs:
            self.tabs.move_to_end(key)
            return self.tabs[key]
        tab = load(_watched_tab(self.context, self.site), self.site, name, viewport)
        self.tabs[key] = tab
        while len(self.tabs) > self.keep:
            self.tabs.popitem(last=False)[1].close()
        return tab

    def close(self):
        for tab in self.tabs.values():
            tab.close()


@pytest.fixture(scope="session")
def loaded(browser_context, site):
    """``loaded(name, viewport)``: the tab showing page ``name`` at ``viewport``, loaded
    once per session and shared; its ``problems`` are those seen since it was opened."""
    pages = _LoadedPages(browser_context, site)
    yield pages
    pages.close()


def _page_key(item, index: int):
    params = getattr(getattr(item, "callspec", None), "params", {})
    viewport = params.get("viewport") or {}
    lab = item.path.name == "test_lab.py"  # its JupyterLab starts once, for its own tests
    return (lab, str(params.get("name", "")), viewport.get("width", 0), index)


@pytest.fixture(scope="session")
def mathjax_dir():
    """The local MathJax 3 that stands in for the CDN's, or ``None``."""
    return _local_mathjax()


#: Full-page screenshots of every page are for a person to look through; they take seconds
#: per chapter page, so they are taken only with ``FROMSCRATCH_SCREENSHOTS=1``.
ALL_SCREENSHOTS = os.environ.get("FROMSCRATCH_SCREENSHOTS") == "1"


@pytest.fixture
def shot():
    """``shot(page, name)`` saves a screenshot under ``_build/screenshots/``: the whole
    page with ``FROMSCRATCH_SCREENSHOTS=1``, else the part in view."""

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name.replace('/', '__')}.png"
        page.screenshot(path=str(path), full_page=ALL_SCREENSHOTS)
        return path

    return save
