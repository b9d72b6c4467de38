"""The website on a desktop (1400 px) and a phone (390 px), checked in headless Chromium.

Every page of the built site: no console error, page error, failed request or request that
leaves the site; no Markdown table left as raw ``| ... |`` text; no code or output block
that scrolls sideways on a desktop. On a phone: the navigation and contents drawers open
and can be used, and the course map's text stays readable. Chapters: a visible "Open in
Colab" badge and a working notebook download at the top; every figure has real alt text.

    pytest tests/browser/test_layout.py      # after jupyter-book build . (see test_site.py)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())

pytestmark = pytest.mark.browser

#: Viewport sizes: a desktop, and a phone (below the theme's 992 px breakpoint, where both
#: sidebars become drawers).
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}

#: The alt text ``_ext/course_site.py`` gives an image it knows nothing about.
GENERIC_ALT = "A figure produced by the code cell above"

#: Smallest size (CSS px) of the course map's text on a 390 px phone and a desktop.
MIN_MAP_TEXT_PX = 10.0


def site_pages() -> list:
    """Every HTML page of the built site (``chapters/01_cnn``, ``genindex``, ...)."""
    if not HTML.exists():
        return [TOC["root"]]
    skip = ("_static", "_sources", "_images", "_downloads")
    return sorted(str(p.relative_to(HTML).with_suffix("")) for p in HTML.rglob("*.html")
                  if not p.relative_to(HTML).parts[0].startswith(skip))


def toc_chapters() -> list:
    files = [c["file"] for part in TOC.get("parts", []) for c in part.get("chapters", [])]
    return [f for f in files if re.fullmatch(r"chapters/\d\d_\w+", f)]


PAGES = site_pages()
CHAPTERS = toc_chapters()


def open_page(page, site: str, name: str, viewport: dict):
    page.set_viewport_size(viewport)
    page.goto(f"{site}/{name}.html", wait_until="load")
    page.wait_for_load_state("networkidle")
    return page


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("name", PAGES)
def test_page_has_no_errors_or_failed_requests(loaded, name, viewport):
    page = loaded(name, viewport)  # it waited for late console messages (theme, MathJax)
    assert not page.problems, f"{name} at {viewport['width']} px: {page.problems}"


# Paragraph or Markdown-output text that is a Markdown table left unrendered: a separator
# row, or a line that starts with a pipe. Printed text (stream outputs, such as a language
# model's sample of help pages) is plain text by design and not looked at.
RAW_TABLE = """() => {
  const found = [];
  document.querySelectorAll('article p, article pre.output, article div.output').forEach(p => {
    if (p.closest('div.cell_input, div.highlight, table, .stream')) return;
    const text = p.innerText;
    if (/\\|\\s*:?-{3,}:?\\s*\\|/.test(text) || text.split('\\n').some(l => /^\\s*\\|/.test(l)))
      found.push(text.slice(0, 120));
  });
  return found;
}"""


@pytest.mark.parametrize("name", PAGES)
def test_no_raw_markdown_tables(loaded, name):
    page = loaded(name, DESKTOP)
    raw = page.evaluate(RAW_TABLE)
    assert not raw, f"{name} shows Markdown table text instead of a table: {raw}"


OVERFLOWING_BLOCKS = """() => {
  const found = [];
  document.querySelectorAll('article pre').forEach(pre => {
    if (pre.scrollWidth > pre.clientWidth + 1) {
      const lines = pre.textContent.split('\\n');
      const longest = lines.reduce((a, l) => l.length > a.length ? l : a, '');
      const kind = pre.closest('div.cell_output, div.output') ? 'output' : 'code';
      found.push(`${kind} block ${pre.scrollWidth} px wide in ${pre.clientWidth} px; ` +
                 `longest line (${longest.length} chars): ${longest.trim().slice(0, 60)}`);
    }
  });
  return found;
}"""


@pytest.mark.parametrize("name", PAGES)
def test_code_and_output_blocks_fit_on_a_desktop(loaded, name):
    page = loaded(name, DESKTOP)
    wide = page.evaluate(OVERFLOWING_BLOCKS)
    assert not wide, (f"{name}: {len(wide)} block(s) scroll sideways at 1400 px "
                      "(see tests/test_chapter_style.py for the line limit):\n" + "\n".join(wide))


@pytest.mark.parametrize("name", PAGES)
def test_at_most_one_search_field(loaded, name):
    page = loaded(name, DESKTOP)
    fields = page.evaluate("""() => [...document.querySelectorAll(
        'form.bd-search, .search-button-field')].filter(e => !e.closest('article, .bd-search-container')
        && e.getBoundingClientRect().width > 0 && getComputedStyle(e).visibility !== 'hidden')
        .length""")
    assert fields <= 1, f"{name} shows {fields} search fields around the page"


def _in_view(page, selector: str) -> dict:
    return page.evaluate("""(sel) => {
      const el = document.querySelector(sel);
      if (!el) return {found: false};
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      const link = el.querySelector('a[href]');
      let hit = false;
      if (link) {
        const lr = link.getBoundingClientRect();
        const at = document.elementFromPoint(lr.x + lr.width / 2, lr.y + lr.height / 2);
        hit = at !== null && (at === link || link.contains(at));
      }
      return {found: true, left: r.left, right: r.right, width: r.width,
              visible: style.visibility !== 'hidden' && style.display !== 'none',
              innerWidth: window.innerWidth, linkHit: hit};
    }""", selector)


def _open_drawer(page, site, shot, name, toggle_class, sidebar, what):
    """Open a page at phone width, press its drawer button, and check that the drawer
    slides fully into view with clickable links."""
    open_page(page, site, name, PHONE)
    toggle = page.locator(f"{toggle_class}:visible")
    assert toggle.count() >= 1, f"{name}: no visible {what} button at 390 px"
    toggle.first.click()
    page.wait_for_timeout(500)
    box = _in_view(page, sidebar)
    shot(page, f"phone-{what}-{name}")
    assert box["found"] and box["visible"], f"{name}: no {what} sidebar: {box}"
    assert box["left"] >= -1 and box["width"] >= 200 and box["right"] <= box["innerWidth"] + 1, (
        f"{name}: the {what} drawer did not open into view: {box}")
    assert box["linkHit"], f"{name}: the {what} drawer's links are covered by something else"


@pytest.mark.parametrize("name", [TOC["root"], *CHAPTERS])
def test_navigation_drawer_opens_on_a_phone(page, site, shot, name):
    _open_drawer(page, site, shot, name, ".primary-toggle", ".bd-sidebar-primary", "menu")
    target = CHAPTERS[-1] if name != CHAPTERS[-1] else CHAPTERS[0]
    page.click(f".bd-sidebar-primary nav.bd-docs-nav a[href$='{target.split('/')[-1]}.html']")
    page.wait_for_url(f"**/{target}.html")


@pytest.mark.parametrize("name", CHAPTERS)
def test_contents_drawer_opens_on_a_phone(page, site, shot, name):
    _open_drawer(page, site, shot, name, ".secondary-toggle", ".bd-sidebar-secondary",
                 "contents")
    sections = page.locator(".bd-sidebar-secondary nav a[href^='#']").count()
    assert sections >= 3, f"{name}: the contents drawer lists {sections} sections"


MAP_TEXT = """() => {
  const out = [];
  document.querySelectorAll('div.course-map svg').forEach(svg => {
    if (svg.getBoundingClientRect().width === 0) return;  // the layout not shown here
    let smallest = Infinity;
    svg.querySelectorAll('text').forEach(t => {
      const px = t.getScreenCTM().a * parseFloat(getComputedStyle(t).fontSize);
      smallest = Math.min(smallest, px);
    });
    out.push({layout: svg.getAttribute('class'), width: svg.getBoundingClientRect().width,
              smallest: smallest});
  });
  return out;
}"""


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("name", ["overview", TOC["root"]])
def test_course_map_text_is_readable(loaded, name, viewport):
    page = loaded(name, viewport)
    shown = page.evaluate(MAP_TEXT)
    assert len(shown) == 1, f"{name}: expected one visible map layout, got {shown}"
    layout = shown[0]
    print(f"{name} at {viewport['width']} px: {layout}")
    assert layout["width"] <= viewport["width"], f"{name}: the map is wider than the screen"
    assert layout["smallest"] >= MIN_MAP_TEXT_PX, (
        f"{name} at {viewport['width']} px: map text is {layout['smallest']:.1f} px tall")
    page.locator("div.course-map").screenshot(
        path=str(ROOT / "_build" / "screenshots" / f"map-{name}-{viewport['width']}.png"))


def test_course_map_links_written_chapters_only(page, site):
    open_page(page, site, "overview", DESKTOP)
    svg = "div.course-map svg.columns-3"
    links = page.eval_on_selector_all(f"{svg} a.map-box", "as => as.map(a => a.href.baseVal "
                                      "|| a.getAttribute('href'))")
    assert sorted(links) == sorted(f"{c}.html" for c in CHAPTERS), links
    coming = page.eval_on_selector_all(f"{svg} g.map-box.coming", "gs => gs.map(g => g.textContent)")
    assert len(coming) == 14 - len(CHAPTERS)
    assert all("coming" in text for text in coming)
    page.click(f"{svg} a.map-box[href='{CHAPTERS[0]}.html']")
    page.wait_for_url(f"**/{CHAPTERS[0]}.html")


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_starts_with_colab_badge_and_download(loaded, site, name):
    page = loaded(name, PHONE)
    owner_repo = CONFIG["repository"]["url"].removeprefix("https://github.com/").strip("/")
    branch = CONFIG["repository"].get("branch", "main")
    colab = page.locator("article p.chapter-badges a.badge-colab")
    assert colab.count() == 1 and colab.is_visible(), f"{name}: no visible Open in Colab badge"
    assert colab.get_attribute("href") == (
        f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{name}.ipynb")
    title_y = page.locator("article h1").first.bounding_box()["y"]
    badge_y = colab.bounding_box()["y"]
    assert 0 < badge_y - title_y < 200, f"{name}: the badge is not right under the title"
    download = page.locator("article p.chapter-badges a.badge-download")
    assert download.is_visible()
    href = download.get_attribute("href")
    response = page.request.get(f"{site}/{Path(name).parent.as_posix()}/{href}")
    assert response.ok, f"{name}: the notebook download link {href} gives {response.status}"
    notebook = json.loads(response.text())
    assert notebook["cells"], f"{name}: the downloaded notebook is empty"


@pytest.mark.parametrize("name", CHAPTERS)
def test_figures_have_meaningful_alt_text(loaded, name):
    page = loaded(name, DESKTOP)
    alts = page.eval_on_selector_all(
        "article div.cell_output img", "imgs => imgs.map(i => [i.getAttribute('src'), i.alt])")
    assert alts, f"{name}: no figures"
    bad = [(src, alt) for src, alt in alts
           if not alt or re.fullmatch(r"[0-9a-f]{32,}(\.\w+)?", alt) or alt in src
           or len(alt) < 12 or alt == GENERIC_ALT]
    assert not bad, f"{name}: figures without a real alt text: {bad}"


def test_glossary_links_every_term_to_a_chapter(loaded):
    page = loaded("glossary", DESKTOP)
    entries = page.evaluate("""() => [...document.querySelectorAll('dl.glossary > dt')].map(dt => {
      const dd = dt.nextElementSibling;
      return [dt.textContent.trim(),
              [...dd.querySelectorAll('a.reference')].map(a => a.getAttribute('href'))];
    })""")
    assert len(entries) >= 13
    unlinked = [term for term, hrefs in entries if not any("chapters/" in h for h in hrefs)]
    assert not unlinked, f"glossary terms with no link to a chapter: {unlinked}"
    targets = {h for _, hrefs in entries for h in hrefs if h.startswith("chapters/") and "#" in h}
    missing = []  # the section ids are in the built HTML (Sphinx writes them, no script)
    for href in sorted(targets):
        path, anchor = href.split("#", 1)
        if f'id="{anchor}"' not in (HTML / path).read_text(encoding="utf-8"):
            missing.append(href)
    assert not missing, f"glossary links to sections that do not exist: {missing}"
