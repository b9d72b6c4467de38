"""A learner's working copy (``python -m fromscratch.workspace``, ``make workspace``): it
holds what the notebooks point to, git ignores it, and running it again never destroys a
learner's work."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fromscratch.workspace import RECORD, course_files, main, make_workspace

ROOT = Path(__file__).resolve().parents[1]


def _course(tmp_path: Path) -> Path:
    source = tmp_path / "course"
    (source / "chapters").mkdir(parents=True)
    (source / "exercises" / "cnn").mkdir(parents=True)
    (source / "chapters" / "01_cnn.ipynb").write_text('{"cells": ["course v1"]}')
    (source / "chapters" / "01_cnn.py").write_text("# the source: not for learners")
    (source / "chapters" / "_template.py").write_text("# a template: not for learners")
    (source / "exercises" / "cnn" / "ex1_pool.py").write_text("# exercise v1")
    (source / "intro.md").write_text("# Intro")
    return source


def test_a_working_copy_holds_the_notebooks_exercises_and_intro(tmp_path):
    source = _course(tmp_path)
    done = make_workspace(tmp_path / "ws", source)
    assert done == {"chapters/01_cnn.ipynb": "copied", "exercises/cnn/ex1_pool.py": "copied",
                    "intro.md": "copied"}
    assert (tmp_path / "ws" / "chapters" / "01_cnn.ipynb").read_text() == '{"cells": ["course v1"]}'
    assert not (tmp_path / "ws" / "chapters" / "01_cnn.py").exists()


def test_running_it_again_never_destroys_a_learners_edits(tmp_path, capsys):
    source, ws = _course(tmp_path), tmp_path / "ws"
    make_workspace(ws, source)
    mine = ws / "chapters" / "01_cnn.ipynb"
    mine.write_text('{"cells": ["my answer"]}')  # the learner's work (or Lab's autosave)
    assert make_workspace(ws, source)["chapters/01_cnn.ipynb"] == "yours"
    assert mine.read_text() == '{"cells": ["my answer"]}'
    # the course changes (a git pull): the learner's notebook stays, the untouched
    # exercise file is brought up to date, a new chapter arrives
    (source / "chapters" / "01_cnn.ipynb").write_text('{"cells": ["course v2"]}')
    (source / "exercises" / "cnn" / "ex1_pool.py").write_text("# exercise v2")
    (source / "chapters" / "02_rnn.ipynb").write_text('{"cells": ["rnn"]}')
    done = make_workspace(ws, source)
    assert done == {"chapters/01_cnn.ipynb": "kept", "chapters/02_rnn.ipynb": "copied",
                    "exercises/cnn/ex1_pool.py": "updated", "intro.md": "unchanged"}
    assert mine.read_text() == '{"cells": ["my answer"]}'
    assert (ws / "exercises" / "cnn" / "ex1_pool.py").read_text() == "# exercise v2"
    # a third run still keeps it, and says so with what to do
    assert main([str(ws), "--source", str(source)]) == 0
    out = capsys.readouterr().out
    assert "kept your version of 1 file(s)" in out and "chapters/01_cnn.ipynb" in out
    assert "rename yours" in out
    assert mine.read_text() == '{"cells": ["my answer"]}'
    # without its record (deleted, or a copy made by hand) nothing is overwritten either
    (ws / RECORD).unlink()
    (ws / "intro.md").write_text("# my notes")
    assert make_workspace(ws, source)["intro.md"] == "kept"
    assert (ws / "intro.md").read_text() == "# my notes"
    assert mine.read_text() == '{"cells": ["my answer"]}'
    # a broken record is treated as no record, not as a reason to overwrite
    (ws / RECORD).write_text("[not json")
    assert make_workspace(ws, source)["chapters/01_cnn.ipynb"] == "kept"
    assert json.loads((ws / RECORD).read_text())


def test_without_a_clone_it_says_what_to_do(tmp_path, capsys):
    assert main([str(tmp_path / "ws"), "--source", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no chapters/ and exercises/" in err and "clone" in err
    with pytest.raises(ValueError, match="folder of its own"):
        make_workspace(_course(tmp_path) / "chapters", tmp_path / "course")


def _exercise_paths(notebook: Path) -> set:
    nb = json.loads(notebook.read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return set(re.findall(r"`(exercises/[^`]+)`", text))


def test_the_exercise_files_the_notebooks_name_open_from_where_the_readme_starts_lab(tmp_path):
    """Each exercise's prompt names its file (``exercises/cnn/ex1_max_pool.py``). Lab
    shows only what is under the folder it starts in: the README's and the website's commands start it in
    the working copy or the repository, where that path is reachable, and the working copy
    holds every file a notebook names and the page the chapters link to (``../intro.md``)."""
    starts = []
    for page in ("README.md", "intro.md"):  # the README's learner section, the website's
        found = re.findall(r"\.venv/bin/jupyter lab\b([^`\n]*)`", (ROOT / page).read_text())
        assert found, f"{page} tells how to start JupyterLab"
        starts += found
    ws = tmp_path / "workspace"
    make_workspace(ws, ROOT)
    notebooks = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    named = set().union(*(_exercise_paths(nb) for nb in notebooks))
    assert len(named) >= 3 * len(notebooks)
    for start in starts:
        folder = start.strip().rstrip("/")
        assert folder in ("", "workspace"), f"JupyterLab started in {folder!r} hides exercises/"
        base = ROOT if folder == "" else ws
        for path in sorted(named):
            assert (base / path).is_file(), f"{path} is not under {base}"
    for notebook in notebooks:
        assert (ws / "chapters" / notebook.name).read_bytes() == notebook.read_bytes()
    assert (ws / "intro.md").is_file()
    assert {p.as_posix() for p in course_files(ROOT)} >= named


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a clone")
def test_git_ignores_the_working_copy():
    ignored = subprocess.run(["git", "check-ignore", "-q", "workspace/chapters/01_cnn.ipynb"],
                             cwd=ROOT)
    assert ignored.returncode == 0, "workspace/ must be in .gitignore"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^workspace: install\n\t.*-m fromscratch\.workspace", makefile, re.M)
