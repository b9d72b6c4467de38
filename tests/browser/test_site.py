"""The website as readers see it, checked in headless Chromium.

Run after building the book:

    tools/install_browser.sh                 # once: Debian's chromium + chromedriver
    jupyter-book build . -W -n --keep-going
    pytest -m browser tests/browser          # screenshots go to _build/screenshots/
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"

pytestmark = pytest.mark.browser

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())

def toc_files() -> list:
    files = [TOC["root"]]
    for part in TOC.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


PAGES = toc_files()
CHAPTERS = [f for f in PAGES if re.fullmatch(r"chapters/\d\d_\w+", f)]


def unexpected(problems) -> list:
    """Every problem counts: no console error, failed request or request off the site."""
    return list(problems)


#: The desktop viewport the reading tests share with test_layout.py and test_readers.py.
DESKTOP = {"width": 1400, "height": 900}


def open_page(page, site: str, name: str):
    page.goto(f"{site}/{name}.html", wait_until="load")
    page.wait_for_load_state("networkidle")
    return page


def test_toc_pages_were_built():
    missing = [f for f in PAGES if not (HTML / f"{f}.html").exists()]
    assert not missing, f"pages in _toc.yml with no HTML: {missing}"


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_without_errors(loaded, shot, name):
    page = loaded(name, DESKTOP)
    shot(page, name)
    problems = unexpected(page.problems)
    assert not problems, f"{name}: {problems}"
    text = page.inner_text("main")
    for placeholder in ("VBox(", "HBox(", "Loading widget", "Error displaying widget"):
        assert placeholder not in text, f"{name} shows a widget placeholder {placeholder!r}"


def test_math_renders_on_the_cnn_page(loaded, shot, mathjax_dir):
    page = loaded("chapters/01_cnn", DESKTOP)
    page.wait_for_selector("mjx-container", timeout=20_000)
    page.wait_for_function("document.querySelectorAll('mjx-container').length > 5")
    raw = page.locator(".math:not(:has(mjx-container))")
    assert raw.count() == 0, f"{raw.count()} math elements were not typeset"
    shot(page, "chapters/01_cnn")  # again, now with the math typeset


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_figures_are_present(loaded, name):
    page = loaded(name, DESKTOP)
    sizes = page.eval_on_selector_all(
        "article img", "imgs => imgs.map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(sizes) >= 3, f"{name}: only {len(sizes)} figures"
    broken = [src for src, width in sizes if width == 0]
    assert not broken, f"{name}: images that did not load: {broken}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_colab_link_opens_this_chapter(loaded, name):
    page = loaded(name, DESKTOP)
    owner_repo = CONFIG["repository"]["url"].removeprefix("https://github.com/").strip("/")
    branch = CONFIG["repository"].get("branch", "main")
    expected = (f"{CONFIG['launch_buttons']['colab_url']}/github/{owner_repo}/blob/{branch}/"
                f"{name}.ipynb")
    hrefs = page.eval_on_selector_all(
        "a[href*='colab.research.google.com']", "links => links.map(a => a.href)")
    assert expected in hrefs, f"{name}: Colab links {hrefs}, expected {expected}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_hidden_setup_cell_is_not_shown(loaded, name):
    notebook = json.loads((ROOT / f"{name}.ipynb").read_text())
    first = notebook["cells"][0]
    assert "remove-cell" in first["metadata"].get("tags", [])
    assert "Google Colab set-up" in "".join(first["source"])
    assert "Google Colab set-up" not in loaded(name, DESKTOP).content()


def test_navigation_reaches_every_chapter(page, site):
    open_page(page, site, TOC["root"])
    links = page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "links => links.map(a => a.href)")
    reached = {re.sub(r"\.html(#.*)?$", "", link.removeprefix(site + "/")) for link in links}
    missing = [f for f in PAGES if f != TOC["root"] and f not in reached]
    assert not missing, f"the sidebar does not link to {missing}"
    for name in CHAPTERS:  # follow the sidebar link and land on the chapter
        page.click(f"nav.bd-docs-nav a[href$='{name.split('/')[-1]}.html']")
        page.wait_for_url(f"**/{name}.html")
        assert page.locator("article h1").count() >= 1


@pytest.mark.parametrize("term, chapter", [("im2col", "chapters/01_cnn"),
                                           ("forget gate", "chapters/02_rnn")])
def test_search_finds_a_chapter(page, site, shot, term, chapter):
    if chapter not in PAGES:
        pytest.skip(f"{chapter} is not in the book")
    page.goto(f"{site}/search.html?q={term.replace(' ', '+')}", wait_until="load")
    page.wait_for_selector("#search-results ul.search li a", timeout=20_000)
    hits = page.eval_on_selector_all("#search-results ul.search li a",
                                     "links => links.map(a => a.href)")
    assert any(f"{chapter}.html" in h for h in hits), f"searching {term!r} found {hits}"
    shot(page, f"search-{term.replace(' ', '-')}")
