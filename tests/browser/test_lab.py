"""The learner's path in JupyterLab, driven in headless Chromium: JupyterLab is started by
the test on 127.0.0.1 (its own token, a temporary folder as its root) with the course's
virtual environment, as the README tells learners to start it.

* nbgrader's Validate button does not report success for a wrong answer;
* an exercise check run after a restart (nothing above it run) says what to run;
* an interactive explorer's figure is still there after the notebook is saved and opened
  again (the widget itself is gone then: its model lived in the old kernel session);
* the chapters' MyST markup renders (``jupyterlab-myst``): the learning-objectives box,
  glossary roles and section links, and a citation reads as its key, not as raw markup.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from fromscratch.grading.cli import assign_main

ROOT = Path(__file__).resolve().parents[2]
JUPYTER = Path(sys.executable).with_name("jupyter")
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "fromscratch-test"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not JUPYTER.exists(),
    reason="needs Debian's Chromium (tools/install_browser.sh) and JupyterLab in this environment")

WRONG = ("import torch\n\n\ndef max_pool2d(x, kernel_size, stride=None):\n"
         "    return torch.nn.functional.avg_pool2d(x, kernel_size, stride)\n")


EXPLORER = """import io
import ipywidgets
import matplotlib.pyplot as plt
from fromscratch.explore import Explorer

fig = plt.figure(figsize=(3, 2))
plt.plot([0, 1, 0])
buf = io.BytesIO()
fig.savefig(buf, format="png")
plt.close(fig)
Explorer(ipywidgets.IntSlider(description="step"), buf.getvalue(), "A test explorer")"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a folder holding an assignment and a chapter copy."""
    root = tmp_path_factory.mktemp("lab")
    assert assign_main(["cnn", "-e", "cnn-max-pool", "-n", "hw", "-o", str(root)]) == 0
    nb = nbformat.read(root / "hw.ipynb", as_version=4)
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")).source = WRONG
    nbformat.write(nb, root / "wrong.ipynb")
    shutil.copy(ROOT / "chapters" / "02_rnn.ipynb", root / "02_rnn.ipynb")
    shutil.copy(ROOT / "chapters" / "01_cnn.ipynb", root / "01_cnn.ipynb")
    explorer = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(EXPLORER)])
    explorer.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(explorer, root / "explorer.ipynb")
    port = _free_port()
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--allow-root"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("JupyterLab did not start:\n" + (root / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


_OPENED = []


def _open(browser_context, lab, name):
    """A new tab with ``name`` open in a workspace of its own (JupyterLab would otherwise
    restore the notebooks earlier tests opened)."""
    _OPENED.append(name)
    page = browser_context.new_page()
    page.set_default_timeout(120_000)
    page.goto(f"{lab}/lab/workspaces/test{len(_OPENED)}/tree/{name}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="visible")
    page.get_by_text("Python 3 (ipykernel) | Idle").first.wait_for()  # the kernel is ready
    return page


def _run(page, cell) -> None:
    """Run one cell (click into it, Shift+Enter), as a learner does."""
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


def _dialog_text(page) -> str:
    dialog = page.wait_for_selector(".jp-Dialog-content")
    deadline = time.time() + 240
    text = dialog.inner_text()
    while ("Validating" in text or not text.strip()) and time.time() < deadline:
        time.sleep(1)
        text = dialog.inner_text()
    return text


@pytest.mark.lab
def test_validate_does_not_report_success_for_a_wrong_answer(browser_context, lab):
    page = _open(browser_context, lab, "wrong.ipynb")
    try:
        page.get_by_role("button", name="Validate").first.click()
        text = _dialog_text(page)
        assert "Success" not in text, text[:2000]
        assert "[FAIL] cnn-max-pool" in text, text[:2000]
    finally:
        page.close()


@pytest.mark.lab
def test_an_exercise_check_after_a_restart_says_what_to_run(browser_context, lab):
    page = _open(browser_context, lab, "02_rnn.ipynb")
    try:
        cell = page.locator(".jp-CodeCell", has_text="check_stream_perplexity(").last
        _run(page, cell)
        output = cell.locator(".jp-OutputArea")
        output.get_by_text("[hint]").first.wait_for()
        text = output.inner_text()
        assert "NameError" in text and "Run All Above Selected Cell" in text, text[:2000]
    finally:
        page.close()


@pytest.mark.lab
def test_an_explorer_figure_survives_save_and_reopen(browser_context, lab):
    page = _open(browser_context, lab, "explorer.ipynb")
    try:
        cell = page.locator(".jp-CodeCell").first
        _run(page, cell)
        cell.locator(".jp-OutputArea img").first.wait_for()
        cell.locator(".widget-slider").first.wait_for()  # the live widget
        page.keyboard.press("Control+s")
        page.wait_for_function("() => !document.title.startsWith('*') && "
                               "!document.querySelector('.jp-mod-dirty')")
        time.sleep(1)
    finally:
        page.close()
    page = _open(browser_context, lab, "explorer.ipynb")
    try:
        image = page.locator(".jp-CodeCell").first.locator(".jp-OutputArea img").first
        image.wait_for()
        assert image.evaluate("img => img.naturalWidth > 0 && img.getBoundingClientRect().width > 50")
    finally:
        page.close()


@pytest.mark.lab
def test_myst_markup_renders_in_jupyterlab(browser_context, lab):
    """Chapter 1's opening cell: an admonition with glossary roles, a citation and a table of
    section links. Without MyST in JupyterLab they show as a code block and raw roles."""
    page = _open(browser_context, lab, "01_cnn.ipynb")
    try:
        cell = page.locator(".jp-MarkdownCell", has_text="Learning objectives").first
        cell.scroll_into_view_if_needed()
        box = cell.locator("aside", has_text="Learning objectives").first
        box.wait_for()  # the admonition is a box of its own, not a code block
        assert box.evaluate("e => getComputedStyle(e).borderLeftWidth !== '0px'")
        text = cell.inner_text()  # the rendered text (the hidden editor is left out)
        for raw in ("{term}", "{cite:p}", "```", "{admonition}", ":class:"):
            assert raw not in text, f"raw MyST {raw!r} shows in JupyterLab:\n{text[:1500]}"
        assert "lecun1998gradient" in text  # a citation reads as its key
        assert box.locator("a", has_text="convolution").count() == 1  # {term}`convolution`
        # [Learned filters](learned-filters): a link to the section's label, which marks
        # that section's heading (no raw "(learned-filters)=" line above it). MyST resolves
        # it once the whole notebook is parsed, a moment after the first cells show.
        from playwright.sync_api import expect

        link = cell.locator("a", has_text="Learned filters").first
        expect(link).to_have_attribute("href", "#learned-filters", timeout=30_000)
        heading = page.locator(".jp-MarkdownCell #learned-filters").first
        heading.wait_for(state="attached")
        assert heading.evaluate("e => /^H[1-6]$/.test(e.tagName)")
    finally:
        page.close()
