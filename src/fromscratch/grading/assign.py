"""Make an assignment from exercises: a learner's notebook, an nbgrader source notebook and
the manifest that grading uses.

An assignment holds only the chosen exercises and the setup cells their checks need (for
example the CNN that ``cnn-shift-experiment`` measures), not the chapter's training, so
it runs, and is graded, in seconds.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .. import exercises as ex_mod
from .manifest import MANIFEST_NAME, Manifest, item_for, strict_check

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class Assignment:
    """What :func:`make_assignment` wrote."""

    manifest: Manifest
    folder: Path
    student_notebook: Path  # give this to learners
    source_notebook: Path  # nbgrader: put source/<name>/ in your course directory
    manifest_path: Path


def choose_exercises(chapters: list, ids: list | None = None) -> list:
    """The exercises of ``chapters`` (in file order), or those named in ``ids`` (in that
    order; they must belong to the chapters)."""
    if not chapters:
        raise ValueError("name at least one chapter, e.g. cnn")
    available = []
    for chapter in chapters:
        available += ex_mod.load(chapter)
    if not ids:
        return available
    by_id = {ex.id: ex for ex in available}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ValueError(f"exercise(s) {unknown} are not in chapter(s) {list(chapters)}; "
                         f"available: {sorted(by_id)}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"an exercise is named twice in {list(ids)}")
    return [by_id[i] for i in ids]


def make_assignment(chapters: list, out_dir, *, exercises: list | None = None,
                    points: dict | None = None, name: str | None = None,
                    title: str | None = None) -> Assignment:
    """Write ``<out_dir>/<name>.ipynb`` (learners), ``<out_dir>/source/<name>/<name>.ipynb``
    (nbgrader) and ``<out_dir>/manifest.json``.

    ``points`` maps exercise ids to points, overriding the exercise headers.
    """
    chosen = choose_exercises(list(chapters), exercises)
    name = name or "-".join(chapters)
    if not _NAME.match(name):
        raise ValueError(f"assignment name {name!r}: use letters, digits, '-', '_' and '.'")
    points = dict(points or {})
    unknown = sorted(set(points) - {ex.id for ex in chosen})
    if unknown:
        raise ValueError(f"--points names exercise(s) {unknown} that are not in the assignment")
    for key, value in points.items():
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"points for {key} must be a whole number >= 0, got {value!r}")
    items = [item_for(ex, points.get(ex.id)) for ex in chosen]
    title = title or ("Exercises: " + ", ".join(chapters))
    manifest = Manifest(name=name, title=title, notebook=f"{name}.ipynb", exercises=items)

    folder = Path(out_dir)
    student_path = folder / manifest.notebook
    source_path = folder / "source" / name / manifest.notebook
    source_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build_notebook(manifest, chosen, solution=False), student_path)
    nbformat.write(build_notebook(manifest, chosen, solution=True), source_path)
    manifest_path = folder / MANIFEST_NAME
    manifest.write(manifest_path)
    return Assignment(manifest, folder, student_path, source_path, manifest_path)


def build_notebook(manifest: Manifest, chosen: list, solution: bool) -> nbformat.NotebookNode:
    """The assignment notebook; ``solution=True`` gives the nbgrader source version
    (marked solutions, checks that raise when they fail)."""
    items = {item.id: item for item in manifest.exercises}
    cells = [_cell("markdown", _intro(manifest, solution), _nbgrader("intro", locked=True),
                   ["intro"])]
    with_setup = [ex for ex in chosen if ex.setup]
    if with_setup:
        names = ", ".join(f"exercise {chosen.index(ex) + 1}" for ex in with_setup)
        cells.append(_cell("markdown", f"## Set-up\n\nRun the cell(s) below first: they "
                           f"prepare what the checks of {names} need.",
                           _nbgrader("setup-intro", locked=True), ["setup"]))
        for ex in with_setup:
            cells.append(_cell("code", ex.setup, _nbgrader(f"{ex.id}-setup", locked=True),
                               ["setup", ex.id]))
    for number, ex in enumerate(chosen, start=1):
        ex = copy.copy(ex)
        ex.points = items[ex.id].points
        prompt, answer, check = ex_mod.notebook_cells(ex, number, solution=solution)
        prompt["source"] = _without_solution_hint(prompt["source"])
        if solution:
            check["source"] = strict_check(ex.check, ex.points)
        for cell in (prompt, answer, check):
            cell["metadata"]["nbgrader"].setdefault("task", False)
            cells.append(nbformat.from_dict(cell))
    for i, cell in enumerate(cells):  # stable ids: the same input gives the same file
        cell["id"] = f"{manifest.name[:40]}-{i}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.update({
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "fromscratch": {"assignment": manifest.name,
                        "exercises": [item.id for item in manifest.exercises]},
    })
    nbformat.validate(nb)
    return nb


def _intro(manifest: Manifest, solution: bool) -> str:
    rows = "\n".join(f"| {n} | {item.title} | `{item.id}` | {item.points} |"
                     for n, item in enumerate(manifest.exercises, start=1))
    text = (f"# {manifest.title}\n\n"
            f"Assignment `{manifest.name}`: {len(manifest.exercises)} exercises, "
            f"{manifest.total_points} points.\n\n"
            "| # | Exercise | id | Points |\n|---|---|---|---|\n" + rows + "\n\n"
            "**How to work:** write your code where a cell says `raise NotImplementedError()`, "
            "then run the check cell below it, as often as you like. Keep the function names. "
            "You may add cells of your own to try things out, but grading runs **only each "
            "exercise's answer cell, on its own**, after the set-up cells: keep everything an "
            "answer needs (imports, helper functions) inside its answer cell.\n\n"
            "**Before you submit:** *Restart & Run All*, then save. Grading uses the original "
            "set-up and check cells (edits to them are ignored and reported), with a time "
            "limit per cell.")
    if solution:
        # nbgrader reads every line naming a solution marker as a marker: name none here
        text += ("\n\n*nbgrader source version: the solutions are marked for nbgrader; "
                 "each check cell raises when its check fails and otherwise shows the "
                 "exercise's points.*")
    return text


def _without_solution_hint(prompt: str) -> str:
    """Drop the chapter's pointer to ``show_solution`` (not for graded work)."""
    return re.sub(r"\n*\*Stuck\?.*?\*\s*$", "", prompt, flags=re.S).rstrip() + "\n"


def _nbgrader(grade_id: str, **kw) -> dict:
    meta = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
            "solution": False, "task": False}
    meta.update(kw)
    return meta


def _cell(kind: str, source: str, nbgrader: dict, tags: list) -> nbformat.NotebookNode:
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(source=source, metadata={"nbgrader": nbgrader, "tags": tags})
