"""The course's exercises, each defined once in ``exercises/<chapter>/<name>.py``.

One file holds everything about an exercise: a header (id, title, kind, points), the
prompt, the reference solution with nbgrader's ``### BEGIN SOLUTION`` / ``### END
SOLUTION`` markers, the check cell, an optional setup cell (what the check needs when the
exercise runs outside its chapter) and typical mistakes with the feedback they must get.
From it come the learner's stub, the notebook cells (with nbgrader metadata) and the
tests. File format::

    # ---
    # id: cnn-max-pool
    # title: Max pooling from scratch
    # kind: implement            (implement | model | experiment)
    # points: 3
    # ---
    # %% [markdown]
    # The prompt, as Markdown in comments.
    # %% [solution]
    def f(x):
        ### BEGIN SOLUTION
        return x
        ### END SOLUTION
    # %% [check]
    from fromscratch.checks.cnn import check_f
    check_f(f)
    # %% [setup]            (optional)
    # %% [mistake] a short name | expect: words the feedback must contain
    def f(x):
        return -x

``show_solution("cnn-max-pool")`` prints a reference solution on request.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
KINDS = ("implement", "model", "experiment")
_CELL = re.compile(r"^# %% \[(\w+)\](.*)$")


class ExerciseError(ValueError):
    """An exercise file is malformed; the message names the file and the problem."""


@dataclass
class Mistake:
    name: str
    expect: str  # text the check's feedback must contain
    code: str


@dataclass
class Exercise:
    id: str
    title: str
    kind: str
    points: int
    chapter: str
    prompt: str
    solution: str  # with the BEGIN/END SOLUTION markers
    check: str
    setup: str = ""
    mistakes: list = field(default_factory=list)
    path: Optional[Path] = None

    @property
    def reference(self) -> str:
        """The solution with the markers removed: runnable reference code."""
        lines = [ln for ln in self.solution.splitlines() if ln.strip() not in (BEGIN, END)]
        return "\n".join(lines)

    @property
    def stub(self) -> str:
        """What the learner starts from: each solution region replaced by nbgrader's stub."""
        return strip_solutions(self.solution)


def strip_solutions(code: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region with a stub
    at the region's indentation, as nbgrader does."""
    out, inside = [], False
    for line in code.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ExerciseError("nested '### BEGIN SOLUTION'")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + s for s in STUB.splitlines()]
        elif stripped == END:
            if not inside:
                raise ExerciseError("'### END SOLUTION' without a BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ExerciseError("'### BEGIN SOLUTION' without an END")
    return "\n".join(out)


def exercises_dir() -> Path:
    """Where the exercise files are: ``exercises/`` of a clone, or inside the installed package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_exercises", here.parents[1] / "exercises"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "The exercise files were not found (looked in the installed package and in the "
        "repository's exercises/ folder). Reinstall the course package."
    )


def parse(path: Path) -> Exercise:
    """Read one exercise file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    m = re.match(r"# ---\n(.*?)\n# ---\n", text, re.S)
    if not m:
        raise ExerciseError(f"{path}: must start with a '# ---' header block")
    header = {}
    for line in m.group(1).splitlines():
        key, _, value = line.lstrip("# ").partition(":")
        header[key.strip()] = value.strip()
    missing = {"id", "title", "kind", "points"} - set(header)
    if missing:
        raise ExerciseError(f"{path}: header lacks {sorted(missing)}")
    if header["kind"] not in KINDS:
        raise ExerciseError(f"{path}: kind must be one of {KINDS}, got {header['kind']!r}")
    cells, current = [], None
    for line in text[m.end():].splitlines():
        cm = _CELL.match(line)
        if cm:
            current = [cm.group(1), cm.group(2).strip(), []]
            cells.append(current)
        elif current is not None:
            current[2].append(line)
        elif line.strip():
            raise ExerciseError(f"{path}: text outside a '# %% [...]' cell: {line!r}")
    parts = {"markdown": [], "solution": [], "check": [], "setup": []}
    mistakes = []
    for kind, arg, lines in cells:
        body = "\n".join(lines).strip("\n")
        if kind == "mistake":
            name, _, expect = arg.partition("| expect:")
            if not expect.strip():
                raise ExerciseError(f"{path}: a mistake needs '| expect: <feedback words>'")
            mistakes.append(Mistake(name.strip(), expect.strip(), body))
        elif kind in parts:
            parts[kind].append(body)
        else:
            raise ExerciseError(f"{path}: unknown cell kind [{kind}]")
    for kind in ("markdown", "solution", "check"):
        if len(parts[kind]) != 1:
            raise ExerciseError(f"{path}: needs exactly one [{kind}] cell")
    if BEGIN not in parts["solution"][0]:
        raise ExerciseError(f"{path}: the solution has no '{BEGIN}' region")
    if not mistakes:
        raise ExerciseError(f"{path}: list at least one typical [mistake]")
    prompt = "\n".join(
        ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in parts["markdown"][0].splitlines()
    )
    ex = Exercise(
        id=header["id"],
        title=header["title"],
        kind=header["kind"],
        points=int(header["points"]),
        chapter=path.parent.name,
        prompt=prompt,
        solution=parts["solution"][0],
        check=parts["check"][0],
        setup=parts["setup"][0] if parts["setup"] else "",
        mistakes=mistakes,
        path=path,
    )
    strip_solutions(ex.solution)  # validates the markers
    return ex


def load(chapter: Optional[str] = None) -> list:
    """All exercises (of one chapter, e.g. ``"cnn"``), in file-name order."""
    root = exercises_dir()
    chapters = [chapter] if chapter else sorted(p.name for p in root.iterdir() if p.is_dir())
    out = []
    for ch in chapters:
        folder = root / ch
        if not folder.is_dir():
            known = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise KeyError(f"no exercises for chapter {ch!r}; chapters with exercises: {known}")
        out += [parse(p) for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]
    return out


def get(exercise_id: str) -> Exercise:
    for ex in load():
        if ex.id == exercise_id:
            return ex
    raise KeyError(f"no exercise {exercise_id!r}; known: {[e.id for e in load()]}")


def show_solution(exercise_id: str) -> None:
    """Print the reference solution of an exercise (try it yourself first!)."""
    ex = get(exercise_id)
    print(f"# Reference solution of {ex.id}: {ex.title}\n")
    print(ex.reference)


def run(ex: Exercise, code: str, strict: bool = False, namespace: Optional[dict] = None):
    """Run ``code`` (the learner's cell) then the exercise's check; return the CheckResult.

    The setup cell runs first unless ``namespace`` already holds what the check needs.
    """
    ns = {"__name__": "__exercise__"} if namespace is None else namespace
    if namespace is None and ex.setup:
        exec(compile(ex.setup, f"<{ex.id} setup>", "exec"), ns)
    exec(compile(code, f"<{ex.id} solution>", "exec"), ns)
    *body, last = _split_last_expression(ex.check)
    if body:
        exec(compile("\n".join(body), f"<{ex.id} check>", "exec"), ns)
    ns["__strict__"] = strict
    call = last.rstrip()
    if not call.endswith(")"):
        raise ExerciseError(f"{ex.id}: the check cell must end with a check call")
    call = call[:-1] + (", " if not call[:-1].rstrip().endswith("(") else "") + "strict=__strict__)"
    return eval(compile(call, f"<{ex.id} check>", "eval"), ns)


def _split_last_expression(code: str) -> list:
    lines = textwrap.dedent(code).strip().splitlines()
    # the last statement starts at the last line that is not indented or a continuation
    start = max(i for i, ln in enumerate(lines) if ln and not ln[0].isspace() and not ln.startswith(")"))
    return lines[:start] + ["\n".join(lines[start:])]


def notebook_cells(ex: Exercise, number: int, solution: bool = False) -> list:
    """The exercise as notebook cells (nbformat dicts) with nbgrader metadata:
    prompt (read-only), the learner's cell (stub, or the marked solution), the check
    (a graded, locked cell)."""
    prompt = (
        f"### Exercise {number}: {ex.title}\n\n*{ex.kind}, {ex.points} points*\n\n{ex.prompt}\n\n"
        f"*Stuck? `show_solution(\"{ex.id}\")` prints a reference solution "
        f"(also in `exercises/{ex.chapter}/{ex.path.name if ex.path else ''}`).*"
    )
    def nbg(grade_id, **kw):
        meta = {"grade": False, "solution": False, "locked": False, "task": False,
                "grade_id": grade_id, "schema_version": 3}
        meta.update(kw)
        return {"nbgrader": meta, "tags": ["exercise", ex.id]}

    return [
        _cell("markdown", prompt, nbg(f"{ex.id}-prompt", locked=True)),
        _cell("code", ex.solution if solution else ex.stub, nbg(ex.id, solution=True)),
        _cell("code", ex.check, nbg(f"{ex.id}-check", grade=True, locked=True,
                                     points=ex.points)),
    ]


def _cell(kind: str, source: str, metadata: dict) -> dict:
    cell = {"cell_type": kind, "metadata": metadata, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell
