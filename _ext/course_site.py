"""Sphinx extension for the course website: notebook figures and notebook downloads.

1. Numbered figures with captions, alt text and a phone layout, for the images of
executed notebooks.

myst-nb writes every image output of a notebook to a file named by the SHA-256 of its
bytes and gives it no alt text (so browsers and screen readers fall back to the file
name, a hash). The course's plotting helpers (``fromscratch.plotting.show``) store a
description in each displayed figure's output metadata under ``fromscratch_figure``:
``alt``, ``caption`` and ``narrow`` (the same figure laid out for a phone, a base64 PNG).
After a notebook is read, this extension finds each of its images by that hash and:

- sets the alt text: the stored ``alt``; else the output's own ``text/plain`` when it
  describes something (not matplotlib's ``<Figure size ...>``); else a generic phrase;
- wraps the image in a numbered figure, "Figure 3.2. <caption>" (3 from the chapter's
  file name ``03_...``, 2 for its second figure), with the id ``figure-3-2`` so prose
  can link to it;
- adds the phone layout as a second image (class ``fig-narrow``; the wide one gets
  ``fig-wide``), and ``_static/course.css`` shows the one that fits the screen;
  ``_static/course.js`` makes each figure a link to its full-size image.

Nothing needs to be tagged in the chapter sources.

2. Each notebook page's ``.ipynb`` is copied next to its HTML page (``chapters/01_cnn.ipynb``
beside ``chapters/01_cnn.html``), the target of the chapter's "Download the notebook" link
(``tools/build_notebooks.py`` writes that link into the notebook).

3. A script the page would include twice is included once: sphinx-thebe adds its settings
script (``const THEBE_JS_URL = ...``) once per read phase, and the second copy throws
"Identifier 'THEBE_JS_URL' has already been declared" on every page.

4. Linter pragmas (``# noqa: ...``) are removed from the code shown on the website: they
keep the chapter sources lint-clean and mean nothing to a reader.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

from docutils import nodes

METADATA_KEY = "fromscratch_figure"  # = fromscratch.plotting.FIGURE_METADATA_KEY
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
GENERIC_ALT = "A figure produced by the code cell above"
_MATPLOTLIB_REPR = re.compile(r"^<(Figure|matplotlib\.|Axes)")


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def describe_outputs(notebook: dict) -> dict:
    """``{sha256 of image bytes: {"alt": str, "caption": str (optional)}}`` for every image
    output of ``notebook`` (a notebook as a dict, ``json.load``)."""
    found, section = {}, ""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            headings = re.findall(r"^#{1,4} +(.+)$", _text(cell.get("source")), re.M)
            section = headings[-1].strip() if headings else section
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            meta = out.get("metadata", {}).get(METADATA_KEY) or {}
            plain = _text(data.get("text/plain")).strip()
            alt = str(meta.get("alt") or "").strip()
            if not alt and plain and not _MATPLOTLIB_REPR.match(plain):
                alt = plain
            for mime in IMAGE_TYPES:
                if mime not in data:
                    continue
                raw = base64.b64decode(_text(data[mime]))
                fallback = f"A figure of the section \u201c{section}\u201d" if section else GENERIC_ALT
                entry = {"alt": alt or fallback}
                if meta.get("caption"):
                    entry["caption"] = str(meta["caption"]).strip()
                if meta.get("narrow"):
                    entry["narrow"] = meta["narrow"]
                found[hashlib.sha256(raw).hexdigest()] = entry
    return found


NOQA = re.compile(r"[ \t]*# noqa\b[^\n]*")


def chapter_number(docname: str):
    """3 for ``chapters/03_transformer``; ``None`` for pages that are not chapters."""
    m = re.match(r"(?:.*/)?(\d\d)_\w+$", docname)
    return int(m.group(1)) if m else None


def _image_file(app, uri: str) -> Path:
    """The file an image node's ``uri`` names (``/x`` is relative to the source folder)."""
    if uri.startswith("/") and not Path(uri).exists():
        return Path(app.srcdir) / uri.lstrip("/")
    path = Path(uri)
    return path if path.is_absolute() else Path(app.srcdir) / path


class notebook_figure(nodes.figure):  # noqa: N801 (docutils names nodes in lower case)
    """A notebook figure numbered by this extension ("Figure 3.2"). A subclass, so that
    Sphinx does not number it again, nor warn that it has no id (the id is on a wrapper)."""


def _visit_notebook_figure(self, node):
    self.visit_figure(node)


def _depart_notebook_figure(self, node):
    self.depart_figure(node)


def _on_doctree_read(app, doctree) -> None:
    path = Path(app.env.doc2path(app.env.docname))
    if path.suffix != ".ipynb" or not path.exists():
        return
    for block in list(doctree.findall(nodes.literal_block)):
        text = block.astext()
        if "# noqa" in text:
            clean = NOQA.sub("", text)
            # rawsource too: Sphinx highlights a literal block only when they agree
            block.rawsource = clean
            block.replace(block.children[0], nodes.Text(clean))
    described = describe_outputs(json.loads(path.read_text(encoding="utf-8")))
    if not described:
        return
    chapter, count = chapter_number(app.env.docname), 0
    for image in list(doctree.findall(nodes.image)):
        uri = image.get("uri", "")
        info = described.get(Path(uri).stem)
        if info is None:
            continue
        if not image.get("alt"):
            image["alt"] = info["alt"]
        if isinstance(image.parent, nodes.figure):
            continue
        count += 1
        number = f"{chapter}.{count}" if chapter is not None else str(count)
        # the id goes on a wrapper: a figure with an id would get Sphinx's own "Fig. N"
        anchor = nodes.container(classes=["notebook-figure-anchor"],
                                 ids=[f"figure-{number.replace('.', '-')}"])
        figure = notebook_figure(classes=["notebook-figure"])
        image.replace_self(anchor)
        anchor += figure
        figure += image
        if info.get("narrow"):
            raw = base64.b64decode(info["narrow"])
            name = hashlib.sha256(raw).hexdigest() + ".png"
            target = _image_file(app, uri).with_name(name)
            if not target.exists():
                target.write_bytes(raw)
            image["classes"].append("fig-wide")
            narrow = nodes.image(uri=uri[: len(uri) - len(Path(uri).name)] + name,
                                 alt=image["alt"], classes=["fig-narrow"])
            figure += narrow
        caption = nodes.caption()
        caption += nodes.inline("", f"Figure {number}. ", classes=["caption-number"])
        if info.get("caption"):
            caption += nodes.inline("", info["caption"], classes=["caption-text"])
        figure += caption


def _copy_notebooks(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for docname in app.env.found_docs:
        source = Path(app.env.doc2path(docname))
        if source.suffix == ".ipynb" and source.exists():
            target = Path(app.outdir) / f"{docname}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # the same script added twice at different priorities is still the same script
        key = (str(getattr(script, "filename", script) or ""),  # None and "" both mean inline
               tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.add_node(notebook_figure, html=(_visit_notebook_figure, _depart_notebook_figure))
    # before Sphinx's image collector (priority 500), which registers the phone
    # layouts added here for copying into _images/
    app.connect("doctree-read", _on_doctree_read, priority=400)
    app.connect("build-finished", _copy_notebooks)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
