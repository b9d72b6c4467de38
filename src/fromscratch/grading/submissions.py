"""Find submissions, read them, and build the notebook the grader executes.

Accepted layouts (``<assignment>`` is the manifest's name)::

    submissions/<student>.ipynb
    submissions/<student>/<assignment>.ipynb      (or the only notebook in the folder)
    submissions/<student>/<assignment>/<any>.ipynb   (nbgrader's submitted/ layout)

The executed notebook is rebuilt from the submission: the grader's preamble, the pristine
setup cells, then the learner's code cells in their order, with the pristine check of an
exercise right after the exercise's cell, and a final cell. Submitted setup and check cells
are not executed; when they differ from the pristine ones (or are missing) that is reported
as tampering.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .manifest import Manifest, normalize, sha256, split_check

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9_.@-]+")


@dataclass
class Submission:
    student: str
    path: Path | None
    problems: list = field(default_factory=list)  # (status code, message)
    notes: list = field(default_factory=list)


def safe_name(student: str) -> str:
    """A file-name-safe version of a student id."""
    return _SAFE.sub("_", student).strip("._") or "student"


def discover(folder, assignment: str) -> list:
    """Every student's submission in ``folder``, sorted by student id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: the submissions folder does not exist")
    found: dict = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name.startswith("_"):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found.setdefault(entry.stem, []).append(entry)
        elif entry.is_dir():
            found.setdefault(entry.name, []).append(entry)
    subs = []
    for student in sorted(found):
        entries = found[student]
        folders = [e for e in entries if e.is_dir()]
        files = [e for e in entries if e.is_file()]
        sub = Submission(student, None)
        if folders:
            sub.path, problem = _pick_notebook(folders[0], assignment)
            if problem:
                sub.problems.append(problem)
            if files:
                sub.notes.append(f"also found {files[0].name}, graded the folder instead")
        else:
            sub.path = files[0]
        subs.append(sub)
    return subs


def _pick_notebook(folder: Path, assignment: str) -> tuple:
    notebooks = sorted(p for p in folder.rglob("*.ipynb")
                       if not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not notebooks:
        return None, ("no-notebook", f"{folder}: no .ipynb file in the student's folder")
    named = [p for p in notebooks if p.name == f"{assignment}.ipynb"]
    if named:
        return min(named, key=lambda p: len(p.parts)), None
    if len(notebooks) == 1:
        return notebooks[0], None
    listing = ", ".join(str(p.relative_to(folder)) for p in notebooks)
    return None, ("ambiguous-submission",
                  f"{folder}: several notebooks ({listing}) and none named {assignment}.ipynb")


def read_notebook(path: Path) -> tuple:
    """``(notebook, None)`` or ``(None, reason)``, never an exception."""
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return None, f"{path.name}: {size / 2**20:.0f} MB, larger than the 20 MB limit"
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path.name}: cannot be read ({exc})"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"{path.name}: not valid JSON ({exc})"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, f"{path.name}: valid JSON but not a notebook (no list of cells)"
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        return None, f"{path.name}: not a readable notebook ({type(exc).__name__}: {exc})"
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw") \
                or not isinstance(cell.get("source", ""), str):
            return None, f"{path.name}: cell {i + 1} is malformed"
    return nb, None


@dataclass
class Prepared:
    """The notebook to execute and what its cells are."""

    notebook: nbformat.NotebookNode
    roles: list  # per cell: ("preamble"|"setup"|"student"|"check"|"end", exercise id or "")
    problems: list = field(default_factory=list)  # (status code, message)
    notes: list = field(default_factory=list)
    missing: list = field(default_factory=list)  # exercise ids without their cell


def _role(cell, known: set) -> tuple:
    """What a submitted cell is: from its nbgrader grade_id, else its tags."""
    meta = cell.get("metadata", {})
    grade_id = (meta.get("nbgrader") or {}).get("grade_id", "")
    tags = meta.get("tags") or []
    for ex_id in known:
        if grade_id == ex_id:
            return "solution", ex_id
        if grade_id == f"{ex_id}-check":
            return "check", ex_id
        if grade_id == f"{ex_id}-setup":
            return "setup", ex_id
        if grade_id == f"{ex_id}-prompt":
            return "prompt", ex_id
    if not grade_id and "exercise" in tags:
        for ex_id in known:
            if ex_id in tags:
                return "tagged", ex_id
    return ("other-exercise", grade_id) if grade_id else ("plain", "")


def other_assignment(nb, manifest: Manifest, known_ids: set) -> str | None:
    """A message if the notebook belongs to another assignment or chapter, else None."""
    meta = nb.metadata.get("fromscratch") or {}
    if meta.get("assignment") and meta["assignment"] != manifest.name:
        return (f"this notebook is assignment {meta['assignment']!r}, "
                f"not {manifest.name!r}")
    ours = {item.id for item in manifest.exercises}
    theirs = set()
    for cell in nb.cells:
        kind, ex_id = _role(cell, ours)
        if kind not in ("plain", "other-exercise"):
            return None
        meta = cell.get("metadata", {})
        grade_id = (meta.get("nbgrader") or {}).get("grade_id", "")
        tags = meta.get("tags") or []
        for candidate in [grade_id, *tags]:
            base = re.sub(r"-(check|prompt|setup)$", "", candidate)
            if base in known_ids:
                theirs.add(base)
    if theirs:
        return (f"this notebook holds exercises {sorted(theirs)}, none of this assignment's "
                f"({sorted(ours)})")
    return None


def prepare(nb, manifest: Manifest, exercises: dict, token: str,
            reference_dirs: list) -> Prepared:
    """Build the notebook to execute from a submitted notebook (see the module docstring)."""
    items = manifest.exercises
    ours = {item.id for item in items}
    by_id = {item.id: item for item in items}
    cells, roles = [], []

    def add(source, role, ex_id=""):
        cell = nbformat.v4.new_code_cell(source=source, metadata={"grader_role": role})
        cell["id"] = f"graded-{len(cells)}"
        cells.append(cell)
        roles.append((role, ex_id))

    grader = f'__import__("fromscratch.grading.runtime", fromlist=["grader"]).grader({token!r})'
    add("# fromscratch grader: preamble\n"
        f'__import__("fromscratch.grading.runtime", fromlist=["Grader"]).Grader('
        f"{token!r}, {manifest.chapters!r}, {[str(d) for d in reference_dirs]!r});", "preamble")
    for item in items:
        if exercises[item.id].setup:
            add(exercises[item.id].setup, "setup", item.id)

    prepared = Prepared(nbformat.v4.new_notebook(), roles)
    seen = {"solution": set(), "check": {}, "setup": {}}
    student_cells: list = []  # (source, exercise id of a solution cell or "")
    for cell in nb.cells:
        kind, ex_id = _role(cell, ours)
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if kind == "tagged":  # a chapter's exercise cell without nbgrader metadata
            pristine = sha256(source) in by_id[ex_id].check_sha256
            kind = "check" if pristine else "solution"
        if kind in ("check", "setup"):
            seen[kind].setdefault(ex_id, []).append(source)
        elif kind == "solution":
            seen["solution"].add(ex_id)
            student_cells.append((source, ex_id))
        elif kind != "prompt":
            student_cells.append((source, ""))

    last_of = {}
    for i, (_, ex_id) in enumerate(student_cells):
        if ex_id:
            last_of[ex_id] = i
    after = {i: ex_id for ex_id, i in last_of.items()}
    for i, (source, ex_id) in enumerate(student_cells):
        add(source, "student", ex_id)  # ex_id: the exercise whose answer cell this is, or ""
        if i in after:
            _add_check(add, grader, exercises[after[i]], after[i])
    for item in items:
        if item.id not in seen["solution"]:
            prepared.missing.append(item.id)
            _add_check(add, grader, exercises[item.id], item.id)
    add(f"# fromscratch grader: end\n{grader}.finish()", "end")

    if prepared.missing:
        prepared.problems.append(("missing-cells", "no cell for exercise(s) "
                                  + ", ".join(prepared.missing)
                                  + " (their checks ran at the end of the notebook)"))
    for item in items:
        if item.id in prepared.missing:
            continue
        for kind, hashes in (("check", item.check_sha256),
                             ("setup", [item.setup_sha256] if item.setup_sha256 else [])):
            if not hashes:
                continue
            sources = seen[kind].get(item.id, [])
            if not sources:
                prepared.problems.append(("tampered", f"the {kind} cell of {item.id} was "
                                          "deleted (the original was used)"))
            elif any(sha256(s) not in hashes for s in sources):
                prepared.problems.append(("tampered", f"the {kind} cell of {item.id} was "
                                          "edited (the original was used)"))
    prepared.notebook.cells = cells
    prepared.notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                                "language": "python"}
    return prepared


def _add_check(add, grader: str, exercise, ex_id: str) -> None:
    body, call = split_check(exercise.check)
    call = call[:-1].rstrip() + (", " if not call[:-1].rstrip().endswith("(") else "") \
        + "strict=False)"
    add(f"# fromscratch grader: check of {ex_id}\n"
        f"{grader}.check({ex_id!r}, {exercise.chapter!r}, {normalize(body)!r}, {call!r})",
        "check", ex_id)
