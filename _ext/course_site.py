"""Sphinx extension for the course website: notebook figures and notebook downloads.

1. Alt text and captions for the images of executed notebooks.

myst-nb writes every image output of a notebook to a file named by the SHA-256 of its
bytes and gives it no alt text (so browsers and screen readers fall back to the file
name, a hash). The course's plotting helpers (``fromscratch.plotting``) store a
description in each displayed figure's output metadata, ``{"alt": ..., "caption": ...}``
under ``fromscratch_figure``. After a notebook is read, this extension finds each of its
images by that hash and:

- sets the alt text: the stored ``alt``; else the output's own ``text/plain`` when it
  describes something (not matplotlib's ``<Figure size ...>``); else a generic phrase;
- wraps the image in a figure with the stored ``caption``, if there is one.

Nothing needs to be tagged in the chapter sources.

3. A script the page would include twice is included once: sphinx-thebe adds its settings
script (``const THEBE_JS_URL = ...``) once per read phase, and the second copy throws
"Identifier 'THEBE_JS_URL' has already been declared" on every page.

2. Each notebook page's ``.ipynb`` is copied next to its HTML page (``chapters/01_cnn.ipynb``
beside ``chapters/01_cnn.html``), the target of the chapter's "Download the notebook" link
(``tools/build_notebooks.py`` writes that link into the notebook).
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
                found[hashlib.sha256(raw).hexdigest()] = entry
    return found


def _on_doctree_read(app, doctree) -> None:
    path = Path(app.env.doc2path(app.env.docname))
    if path.suffix != ".ipynb" or not path.exists():
        return
    described = describe_outputs(json.loads(path.read_text(encoding="utf-8")))
    if not described:
        return
    for image in list(doctree.findall(nodes.image)):
        info = described.get(Path(image.get("uri", "")).stem)
        if info is None:
            continue
        if not image.get("alt"):
            image["alt"] = info["alt"]
        caption = info.get("caption")
        if not caption or isinstance(image.parent, nodes.figure):
            continue
        figure = nodes.figure(classes=["notebook-figure"])
        image.replace_self(figure)
        figure += image
        figure += nodes.caption(caption, caption)


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
    app.connect("doctree-read", _on_doctree_read)
    app.connect("build-finished", _copy_notebooks)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
