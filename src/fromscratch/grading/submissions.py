"""Find submissions, read them safely, and build the job the sandboxed checker runs.

Accepted layouts (``<assignment>`` is the manifest's name)::

    submissions/<student>.ipynb
    submissions/<student>/<assignment>.ipynb      (or the only notebook in the folder)
    submissions/<student>/<assignment>/<any>.ipynb   (nbgrader's submitted/ layout)

Every entry of the folder gets a row or a reason: hidden entries (``.name``) and files
that are not notebooks are listed as skipped; symbolic links (never followed), FIFOs and
other special files get a row saying what they are. Notebooks are opened without following
links and without blocking, and only regular files are read.

The job holds, per exercise, **only the learner's answer cell(s)** of that exercise and
the pristine check; the pristine set-up cells run before. Submitted set-up and check cells
are never run; when they differ from the pristine ones (or are missing) that is reported
as tampering. The learner's other cells are not run either.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .manifest import Manifest, normalize, sha256, split_check

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_DEPTH = 6  # folder levels searched below a student's folder (nbgrader's layout needs 2)
MAX_ENTRIES = 10000  # entries looked at in one student's folder
MAX_NAME = 80  # characters of a student id kept in its feedback file's name
_SAFE = re.compile(r"[^A-Za-z0-9_.@-]+")
_REFERENCE_HINTS = ("show_solution", "exercises_dir", "_exercises", "exercises/")


@dataclass
class Submission:
    student: str
    path: Path | None
    problems: list = field(default_factory=list)  # (status code, message)
    notes: list = field(default_factory=list)


def shown(name) -> str:
    """A file name as text that is safe to print, to write as UTF-8 and to put in a
    gradebook: bytes that are not UTF-8 (a Latin-1 name from an unzipped archive) and
    characters that are not printable (terminal escape codes, new lines, direction
    overrides) become backslash escapes, so different names stay different."""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def safe_name(student: str, limit: int = MAX_NAME) -> str:
    """A file-name-safe version of a student id (at most ``limit`` characters)."""
    return _SAFE.sub("_", student)[:limit].strip("._") or "student"


def feedback_names(students: list) -> dict:
    """A distinct, file-name-safe name per student id, distinct by construction: the id
    itself when it is a safe name of at most ``MAX_NAME`` characters and unique ignoring
    case, else its safe version, ``~`` and a hash of the id. A kept id never contains
    ``~``, so no student can pick a name that takes another's feedback file."""
    import hashlib

    lowered: dict = {}
    for student in students:
        lowered.setdefault(student.lower(), []).append(student)
    names = {}
    for student in students:
        base = safe_name(student)
        if base != student or len(lowered[student.lower()]) > 1:
            digest = hashlib.sha256(student.encode("utf-8", "surrogateescape")).hexdigest()
            base = f"{base}~{digest[:12]}"
        names[student] = base
    return names


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def _is_notebook_name(name: str) -> bool:
    return name.lower().endswith(".ipynb") and len(name) > len(".ipynb")


def discover(folder, assignment: str) -> tuple:
    """``(submissions sorted by student, skipped entries as (name, reason))``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: the submissions folder does not exist")
    found: dict = {}
    skipped: list = []
    specials: dict = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = shown(entry.name)  # the real name stays in entry.path
        if name.startswith("."):
            skipped.append((name, "hidden (its name starts with '.')"))
            continue
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as exc:
            skipped.append((name, f"cannot be read ({exc.strerror or exc})"))
            continue
        student = name[: -len(".ipynb")] if _is_notebook_name(name) else name
        if stat.S_ISDIR(mode):
            found.setdefault(name, []).append(Path(entry.path))
        elif stat.S_ISREG(mode):
            if _is_notebook_name(name):
                found.setdefault(student, []).append(Path(entry.path))
            else:
                skipped.append((name, "not a notebook (.ipynb)"))
        else:
            specials.setdefault(student, []).append(
                f"{name} is {_kind(mode)}; it was not opened"
                + (" (links are never followed)" if stat.S_ISLNK(mode) else ""))
    subs = []
    for student in sorted(set(found) | set(specials)):
        entries = found.get(student, [])
        folders = [e for e in entries if e.is_dir() and not e.is_symlink()]
        files = [e for e in entries if e not in folders]
        sub = Submission(student, None)
        if folders:
            sub.path, problem = _pick_notebook(folders[0], assignment)
            if problem:
                sub.problems.append(problem)
            if files:
                sub.notes.append(f"also found {shown(files[0].name)}, graded the folder "
                                 "instead")
        elif files:
            sub.path = files[0]
            if len(files) > 1:
                sub.notes.append("also found " + ", ".join(shown(f.name) for f in files[1:])
                                 + f", graded {shown(files[0].name)}")
        if student in specials:
            if sub.path is None and not sub.problems:
                sub.problems.append(("invalid-notebook", "; ".join(specials[student])))
            else:
                sub.notes += specials[student]
        subs.append(sub)
    return subs, skipped


def _notebooks_in(folder: Path) -> tuple:
    """``(notebooks, what was not searched)``: the regular ``.ipynb`` files at most
    ``MAX_DEPTH`` folders below ``folder``, found without recursion and without following
    links, looking at no more than ``MAX_ENTRIES`` entries (a folder nested a thousand
    levels deep, or holding a million files, costs no more than that)."""
    notebooks, left_out, seen = [], [], 0
    stack = [(folder, 0)]
    while stack:
        here, depth = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            left_out.append(f"{shown(here.relative_to(folder))}/ cannot be read "
                            f"({exc.strerror or exc})")
            continue
        folders = []
        for entry in entries:
            seen += 1
            if seen > MAX_ENTRIES:
                left_out.append(f"more than {MAX_ENTRIES} entries")
                return notebooks, left_out
            if entry.name.startswith("."):
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                if depth + 1 > MAX_DEPTH:
                    if f"folders more than {MAX_DEPTH} levels deep" not in left_out:
                        left_out.append(f"folders more than {MAX_DEPTH} levels deep")
                else:
                    folders.append(Path(entry.path))
            elif stat.S_ISREG(mode) and _is_notebook_name(entry.name):
                notebooks.append(Path(entry.path))
        stack += [(f, depth + 1) for f in reversed(folders)]
    return notebooks, left_out


def _pick_notebook(folder: Path, assignment: str) -> tuple:
    notebooks, left_out = _notebooks_in(folder)
    where = f"{shown(folder.name)}/"
    skipped = f" (not searched: {'; '.join(left_out)})" if left_out else ""
    if not notebooks:
        return None, ("no-notebook", f"{where}: no notebook (.ipynb regular file) in the "
                      f"student's folder{skipped}")
    named = [p for p in notebooks if p.name.lower() == f"{assignment}.ipynb".lower()]
    if named:
        return min(named, key=lambda p: (len(p.parts), str(p))), None
    if len(notebooks) == 1:
        return notebooks[0], None
    listing = ", ".join(shown(p.relative_to(folder)) for p in notebooks[:10])
    more = f" and {len(notebooks) - 10} more" if len(notebooks) > 10 else ""
    return None, ("ambiguous-submission",
                  f"{where}: several notebooks ({listing}{more}) and none named "
                  f"{assignment}.ipynb{skipped}")


def read_bytes(path: Path) -> tuple:
    """``(bytes, None)`` or ``(None, reason)``: a regular file only, never following a link
    and never blocking (a FIFO is refused, not opened for reading)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return None, f"{shown(path.name)}: cannot be opened ({exc.strerror or exc})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"{shown(path.name)} is {_kind(info.st_mode)}; it was not read"
        if info.st_size > MAX_NOTEBOOK_BYTES:
            return None, f"{shown(path.name)}: {info.st_size / 2**20:.0f} MB, larger than the 20 MB limit"
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_NOTEBOOK_BYTES:
                return None, f"{shown(path.name)}: larger than the 20 MB limit"
            chunks.append(chunk)
        return b"".join(chunks), None
    finally:
        os.close(fd)


def read_notebook(path: Path, data: bytes | None = None) -> tuple:
    """``(notebook, None)`` or ``(None, reason)``, never an exception."""
    if data is None:
        data, problem = read_bytes(path)
        if data is None:
            return None, problem
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"{shown(path.name)}: not UTF-8 text ({exc})"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"{shown(path.name)}: not valid JSON ({exc})"
    except RecursionError:
        return None, f"{shown(path.name)}: JSON nested too deeply to be a notebook"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, f"{shown(path.name)}: valid JSON but not a notebook (no list of cells)"
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        return None, f"{shown(path.name)}: not a readable notebook ({type(exc).__name__}: {exc})"
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw") \
                or not isinstance(cell.get("source", ""), str):
            return None, f"{shown(path.name)}: cell {i + 1} is malformed"
    return nb, None


@dataclass
class Prepared:
    """What the sandboxed checker runs for one submission, and what was found on the way."""

    job: dict  # chapters, setup cells, per exercise: answer, check body and call
    problems: list = field(default_factory=list)  # (status code, message)
    notes: list = field(default_factory=list)
    missing: list = field(default_factory=list)  # exercise ids without their cell


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _marks(cell) -> tuple:
    """``(nbgrader grade_id, tags)`` of a cell; metadata of the wrong type (a string where
    nbgrader writes a dictionary) counts as none."""
    meta = _mapping(cell.get("metadata"))
    grade_id = _mapping(meta.get("nbgrader")).get("grade_id", "")
    tags = meta.get("tags")
    return (grade_id if isinstance(grade_id, str) else "",
            [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [])


def _role(cell, known: set) -> tuple:
    """What a submitted cell is: from its nbgrader grade_id, else its tags."""
    grade_id, tags = _marks(cell)
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
    meta = _mapping(_mapping(nb.get("metadata")).get("fromscratch"))
    if meta.get("assignment") and meta["assignment"] != manifest.name:
        return (f"this notebook is assignment {meta['assignment']!r}, "
                f"not {manifest.name!r}")
    ours = {item.id for item in manifest.exercises}
    theirs = set()
    for cell in nb.cells:
        kind, ex_id = _role(cell, ours)
        if kind not in ("plain", "other-exercise"):
            return None
        grade_id, tags = _marks(cell)
        for candidate in [grade_id, *tags]:
            base = re.sub(r"-(check|prompt|setup)$", "", candidate)
            if base in known_ids:
                theirs.add(base)
    if theirs:
        return (f"this notebook holds exercises {sorted(theirs)}, none of this assignment's "
                f"({sorted(ours)})")
    return None


def prepare(nb, manifest: Manifest, exercises: dict) -> Prepared:
    """Build the checker's job from a submitted notebook (see the module docstring)."""
    items = manifest.exercises
    ours = {item.id for item in items}
    by_id = {item.id: item for item in items}
    seen: dict = {"check": {}, "setup": {}}
    answers: dict = {}
    others = 0
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
            answers.setdefault(ex_id, []).append(source)
        elif kind != "prompt" and source.strip():
            others += 1

    markers = ["/_exercises", "/exercises/"] + sorted(
        {Path(item.file).name for item in items if item.file})
    job_exercises = []
    prepared = Prepared({})
    for item in items:
        exercise = exercises[item.id]
        body, call = split_check(exercise.check)
        call = call[:-1].rstrip() + (", " if not call[:-1].rstrip().endswith("(") else "") \
            + "strict=False)"
        sources = answers.get(item.id)
        if sources is None:
            prepared.missing.append(item.id)
        answer = None if sources is None else "\n\n".join(sources)
        job_exercises.append({"id": item.id, "chapter": exercise.chapter, "answer": answer,
                              "body": normalize(body), "call": call,
                              "reference_markers": markers})
        if answer and any(h in answer for h in _REFERENCE_HINTS):
            prepared.problems.append(("read-reference", f"the answer to {item.id} tries to "
                                      "read the reference solutions (they are not available "
                                      "while grading)"))
    prepared.job = {
        "chapters": manifest.chapters,
        "setup": [{"id": item.id, "source": exercises[item.id].setup} for item in items
                  if exercises[item.id].setup],
        "exercises": job_exercises,
    }
    if prepared.missing:
        prepared.problems.append(("missing-cells", "no answer cell for exercise(s) "
                                  + ", ".join(prepared.missing)
                                  + " (their checks ran without an answer)"))
    if others:
        prepared.notes.append(f"{others} code cell(s) of your own were not run: grading runs "
                              "each exercise's answer cell on its own, after the set-up")
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
            elif any(sha256(src) not in hashes for src in sources):
                prepared.problems.append(("tampered", f"the {kind} cell of {item.id} was "
                                          "edited (the original was used)"))
    return prepared
