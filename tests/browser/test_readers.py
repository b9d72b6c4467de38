"""The website as a reader uses it on a desktop (1400 px) and a phone (390 px).

- Figures: the smallest text of every figure shown is drawn at least ``MIN_FIGURE_TEXT_PX``
  CSS pixels tall (its font size in the PNG, from the plotting helpers' output metadata,
  times the scale at which the browser shows the image); each figure links to its
  full-size image.
- Captions: every figure of a chapter is numbered ("Figure 3.2. ...") in order, with a
  caption that says what it shows and a descriptive alt text.
- Wide elements: every display formula, inline formula, table and printed block that is
  wider than the text column can be scrolled into view, and shows that it can (the class
  ``wide-scroll``, with its shadows, and a "scroll sideways" hint): nothing is clipped.
- Pages speak to readers: no maintainer vocabulary in what a reader reads, no raw record
  keys (``fd_bar_met``, ``fd bar met``) in results tables, no linter pragmas in code.
- The course map says "builds on" and "measured with" (the generative chapters are
  measured with the digits classifier, not built from it), and its heading and part
  headings keep their contrast in dark mode.
- Long chapters: plumbing cells (imports, figure drawing) are collapsed behind a toggle.

Screenshots at 390 px of the pages the issue names go to ``_build/screenshots/readers/``.

    pytest tests/browser/test_readers.py    # after jupyter-book build .
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from pathlib import Path

import pytest
from test_site import CHAPTERS, PAGES  # the book's pages, from _toc.yml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots" / "readers"
sys.path.insert(0, str(ROOT / "src"))

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])

#: Smallest height (CSS px) of any text in a figure as shown: on a phone the figures'
#: phone layouts draw 7-10 pt text at about 10-14 px; a desktop shows the wide layouts.
MIN_FIGURE_TEXT_PX = {390: 9.0, 1400: 7.0}

#: Words that speak to the course's maintainers, not its readers.
MAINTAINER_VOCABULARY = [
    r"seed guide", r"course plan", r"course's plan", r"the shipped\b",
    r"shipped (one|FD|classifier|calibration)", r"\bprototype\b",
    r"the brief\b", r"\bnoqa\b", r"\bFIXME\b", r"\bmaintainers?\b",
    r"when this course was planned", r"in the course's repository",
]


def figure_fonts() -> dict:
    """``{sha256 of a figure PNG: (smallest font in points, dpi)}`` for every figure of
    every chapter notebook, wide and phone layouts (the files the site serves are named
    by that hash)."""
    from fromscratch.plotting import FIGURE_METADATA_KEY

    found = {}
    for name in CHAPTERS:
        nb = json.loads((ROOT / f"{name}.ipynb").read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                meta = out.get("metadata", {}).get(FIGURE_METADATA_KEY) or {}
                if "image/png" not in data:
                    continue
                raw = base64.b64decode("".join(data["image/png"]))
                found[hashlib.sha256(raw).hexdigest()] = (meta.get("font_pt"), meta.get("dpi"))
                if meta.get("narrow"):
                    narrow = base64.b64decode(meta["narrow"])
                    found[hashlib.sha256(narrow).hexdigest()] = (meta.get("narrow_font_pt"),
                                                                 meta.get("dpi"))
    return found


@pytest.fixture(scope="session")
def fonts():
    return figure_fonts()


def open_page(page, site: str, name: str, viewport: dict):
    """Open ``name`` in a tab of the test's own (a test that changes the page)."""
    page.set_viewport_size(viewport)
    page.goto(f"{site}/{name}.html", wait_until="load")
    page.wait_for_load_state("networkidle")
    return page


SHOWN_FIGURES = """() => [...document.querySelectorAll('article div.cell_output img')]
  .filter(i => i.getBoundingClientRect().width > 0)
  .map(i => ({src: i.getAttribute('src'), shown: i.getBoundingClientRect().width,
              natural: i.naturalWidth, link: i.closest('a') ? i.closest('a').href : null}))"""


@VIEWPORTS
@pytest.mark.parametrize("name", CHAPTERS)
def test_figure_text_is_readable(loaded, fonts, name, viewport):
    page = loaded(name, viewport)
    shown = page.evaluate(SHOWN_FIGURES)
    assert shown, f"{name}: no figures shown"
    small, unknown, sizes = [], [], []
    for fig in shown:
        digest = Path(fig["src"]).stem
        pt, dpi = fonts.get(digest, (None, None))
        if pt is None or not dpi:
            unknown.append(fig["src"])
            continue
        px = pt * dpi / 72 * fig["shown"] / fig["natural"]
        sizes.append(px)
        if px < MIN_FIGURE_TEXT_PX[viewport["width"]]:
            small.append(f"{fig['src']}: {px:.1f} px (scale {fig['shown'] / fig['natural']:.2f})")
        assert fig["link"] and fig["link"].endswith(".png"), (
            f"{name}: {fig['src']} does not link to its full-size image")
    print(f"{name} at {viewport['width']} px: {len(sizes)} figures, smallest text "
          f"{min(sizes):.1f} px, median {sorted(sizes)[len(sizes) // 2]:.1f} px")
    assert not unknown, f"{name}: figures without a recorded font size: {unknown}"
    assert not small, f"{name} at {viewport['width']} px: figure text too small: {small}"


CAPTIONS = """() => [...document.querySelectorAll('article div.cell_output img')]
  .filter(i => i.getBoundingClientRect().width > 0)
  .map(i => {
    const fig = i.closest('figure');
    const cap = fig ? fig.querySelector('figcaption') : null;
    const anchor = i.closest('[id^="figure-"]');
    return {alt: i.alt, id: anchor ? anchor.id : null,
            caption: cap ? cap.innerText.trim() : null,
            visible: cap ? cap.getBoundingClientRect().height > 0 : false};
  })"""


@VIEWPORTS
@pytest.mark.parametrize("name", CHAPTERS)
def test_every_figure_has_a_numbered_caption_and_alt_text(loaded, name, viewport):
    page = loaded(name, viewport)
    figures = page.evaluate(CAPTIONS)
    chapter = int(re.search(r"/(\d\d)_", name).group(1))
    assert figures, f"{name}: no figures"
    problems = []
    for k, fig in enumerate(figures, start=1):
        want = f"Figure {chapter}.{k}. "
        if not fig["caption"] or not fig["caption"].startswith(want):
            problems.append(f"figure {k}: caption {fig['caption']!r}, expected {want!r}...")
        elif len(fig["caption"]) < len(want) + 30 or not fig["visible"]:
            problems.append(f"figure {k}: caption too short or hidden: {fig['caption']!r}")
        if fig["id"] != f"figure-{chapter}-{k}":
            problems.append(f"figure {k}: id {fig['id']!r}")
        alt = fig["alt"] or ""
        if len(alt) < 20 or alt.startswith("A figure") or re.fullmatch(r"[0-9a-f]{32,}.*", alt):
            problems.append(f"figure {k}: alt text {alt!r}")
    print(f"{name} at {viewport['width']} px: {len(figures)} numbered, captioned figures")
    assert not problems, f"{name}:\n" + "\n".join(problems)


WIDE = """() => {
  const article = document.querySelector('article');
  const right = article.getBoundingClientRect().right;
  const found = [], marked = [];
  const scroller = el => {
    for (let e = el; e && e !== article; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX;
      if ((o === 'auto' || o === 'scroll') && e.scrollWidth > e.clientWidth + 1) return e;
    }
    return null;
  };
  const items = article.querySelectorAll(
    'div.math, span.math, table, pre, mjx-container, div.cell_output img');
  items.forEach(el => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || el.closest('details:not([open])')) return;  // not shown
    const own = el.scrollWidth > el.clientWidth + 1 &&
                ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
    const past = r.right > right + 1;
    if (!own && !past) return;
    const box = own ? el : scroller(el);
    const what = `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}: ` +
                 (el.innerText || el.getAttribute('alt') || '').slice(0, 50).replace(/\\s+/g, ' ');
    if (!box) { found.push(`clipped, cannot scroll: ${what}`); return; }
    const cue = box.classList.contains('wide-scroll') && box.previousElementSibling &&
                box.previousElementSibling.classList.contains('scroll-hint') &&
                box.previousElementSibling.getBoundingClientRect().height > 0;
    if (!cue) found.push(`scrolls with no visible cue: ${what}`);
    else marked.push(what);
    const start = box.scrollLeft;
    box.scrollLeft = box.scrollWidth;  // the far end can be reached
    if (box.scrollLeft + box.clientWidth < box.scrollWidth - 2)
      found.push(`cannot scroll to its end: ${what}`);
    box.scrollLeft = start;
  });
  return {found, marked: marked.length};
}"""


@VIEWPORTS
@pytest.mark.parametrize("name", PAGES)
def test_every_wide_element_can_be_seen_whole(loaded, name, viewport):
    page = loaded(name, viewport)
    result = page.evaluate(WIDE)
    print(f"{name} at {viewport['width']} px: {result['marked']} wide elements, each "
          "scrollable with a cue")
    assert not result["found"], (f"{name} at {viewport['width']} px:\n"
                                 + "\n".join(result["found"]))


def test_the_vae_exercise_formula_can_be_read_on_a_phone(loaded):
    """The KL formula the learner must implement (chapter 8, exercise 1): inside the
    column, or scrollable with a cue."""
    page = loaded("chapters/08_autoencoder", PHONE)
    info = page.evaluate("""() => {
      const right = document.querySelector('article').getBoundingClientRect().right;
      const item = [...document.querySelectorAll('article li')]
        .find(li => li.innerText.includes('kl_term(mu, logvar)'));
      return [...item.querySelectorAll('span.math')].map(m => {
        const box = m.closest('.wide-scroll');
        return {right: m.getBoundingClientRect().right, limit: right,
                scrollable: box !== null && box.scrollWidth > box.clientWidth};
      });
    }""")
    assert info, "no formula found in the exercise's kl_term item"
    assert all(i["right"] <= i["limit"] + 1 or i["scrollable"] for i in info), info


READER_TEXT = """() => {
  const article = document.querySelector('article').cloneNode(true);
  article.querySelectorAll('div.cell_input, .highlight-python, .highlight-ipython3, ' +
                           'script, style, mjx-container').forEach(e => e.remove());
  return article.innerText;
}"""


@pytest.mark.parametrize("name", PAGES)
def test_pages_speak_to_readers(loaded, name):
    page = loaded(name, DESKTOP)
    text = page.evaluate(READER_TEXT)
    hits = [m.group(0) + ": ..." + text[max(0, m.start() - 60):m.end() + 60].replace("\n", " ")
            for word in MAINTAINER_VOCABULARY for m in re.finditer(word, text, re.I)]
    assert not hits, f"{name} speaks to maintainers:\n" + "\n".join(hits)
    code = page.evaluate("() => [...document.querySelectorAll('article pre')]"
                         ".map(p => p.innerText).join('\\n')")
    assert "# noqa" not in code, f"{name} shows linter pragmas in its code"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapters_mention_only_written_chapters(loaded, name):
    from fromscratch.course_map import MODEL_TYPES

    coming = [m for m in MODEL_TYPES if m.chapter is None]
    words = [m.title for m in coming] + ["MoE", "SSM", "VLM", "VLA", "SLM"]
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b[^.]{0,25}"
                         r"\bchapters?\b", re.I)
    text = loaded(name, DESKTOP).evaluate(READER_TEXT)
    found = [m.group(0) for m in pattern.finditer(text)]
    assert not found, f"{name} mentions chapters that are not written yet: {found}"


@pytest.mark.parametrize("name", [*CHAPTERS, "overview"])
def test_results_tables_show_no_raw_record_keys(loaded, name):
    from fromscratch.report import read_metrics

    keys = set()
    for chapter in CHAPTERS:
        keys |= {k for k in read_metrics(ROOT / f"{chapter}.ipynb") if "_" in k}
    page = loaded(name, DESKTOP)
    cells = page.eval_on_selector_all("article table td, article table th",
                                      "cs => cs.map(c => c.innerText.trim())")
    raw = sorted({c for c in cells for k in keys if c in (k, k.replace("_", " "))})
    assert not raw, f"{name}: tables show raw record keys: {raw}"
    assert not [c for c in cells if re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", c)], cells


def test_map_says_built_on_and_measured_with(loaded):
    page = loaded("overview", DESKTOP)
    boxes = page.eval_on_selector_all("div.course-map svg.columns-3 .map-box",
                                      "bs => bs.map(b => b.textContent.replace(/\\s+/g, ' '))")
    by_title = {re.search(r"\d+\. [^\n]+?(?= chapter| coming)", b).group(0): b for b in boxes}
    for title in ("8. Autoencoder / VAE", "9. GAN", "10. Diffusion", "3. Transformer"):
        box = next(b for t, b in by_title.items() if t.startswith(title))
        assert "measured with:" in box, box
        assert "reuses" not in box
    for title in ("8. Autoencoder / VAE", "9. GAN", "10. Diffusion"):
        box = next(b for t, b in by_title.items() if t.startswith(title))
        assert "measured with: 1. CNN" in box and "builds on: 1. CNN" not in box, box
    transformer = next(b for t, b in by_title.items() if t.startswith("3. Transformer"))
    assert "measured with: 2. RNN" in transformer and "builds on: 2. RNN" not in transformer


CONTRAST = """() => {
  const lum = c => {
    const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const bg = getComputedStyle(document.body).backgroundColor;
  const svg = [...document.querySelectorAll('div.course-map svg')]
    .find(s => s.getBoundingClientRect().width > 0);
  return [...svg.querySelectorAll('text.map-heading, text.map-part')].map(t => {
    const a = lum(getComputedStyle(t).fill), b = lum(bg);
    return {text: t.textContent, ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)};
  });
}"""


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_map_headings_keep_their_contrast(page, site, shot, mode):
    open_page(page, site, "overview", DESKTOP)
    page.evaluate(f"document.documentElement.dataset.theme = '{mode}'")
    page.wait_for_timeout(200)
    found = page.evaluate(CONTRAST)
    assert len(found) >= 5, found
    low = [f for f in found if f["ratio"] < 4.5]
    print(mode, [round(f["ratio"], 1) for f in found])
    page.locator("div.course-map").screenshot(path=str(_shot_path(f"map-{mode}")))
    assert not low, f"map headings with low contrast in {mode} mode: {low}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_plumbing_cells_are_collapsed(loaded, name):
    page = loaded(name, PHONE)
    hidden = page.locator("article div.cell details.hide.above-input")
    assert hidden.count() >= 1, f"{name}: no collapsed code cells"
    assert not hidden.first.evaluate("d => d.open"), f"{name}: the collapsed cell is open"
    first_code = page.locator("article div.cell").first
    assert first_code.locator("details.hide").count() == 1, (
        f"{name}: the imports cell is not collapsed")


def _shot_path(name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / f"{name.replace('/', '__')}.png"


#: The pages and figures the issue names as the worst on a phone.
WORST = {
    "chapters/01_cnn": [2], "chapters/02_rnn": [5, 6], "chapters/03_transformer": [1, 3],
    "chapters/04_llm": [3], "chapters/08_autoencoder": [2], "chapters/09_gan": [2, 3],
    "chapters/10_diffusion": [5, 6],
}


@pytest.mark.parametrize("name", [n for n in WORST if n in CHAPTERS])
def test_phone_screenshots_of_the_worst_figures(loaded, name):
    """Not a check: screenshots at 390 px of the figures the issue names, for a person to
    look at (``_build/screenshots/readers/``)."""
    page = loaded(name, PHONE)
    chapter = int(re.search(r"/(\d\d)_", name).group(1))
    for k in WORST[name]:
        figure = page.locator(f"#figure-{chapter}-{k} figure")
        assert figure.count() == 1, f"{name}: no Figure {chapter}.{k}"
        figure.scroll_into_view_if_needed()
        page.screenshot(path=str(_shot_path(f"{name}-figure-{chapter}-{k}-390")))
