"""The assignment manifest: which exercises, how many points, and the pristine cells' hashes.

``fromscratch-assign`` writes it next to the notebooks; ``fromscratch-grade`` reads it,
loads the exercises from the course package and refuses to grade when a check or setup
cell changed since the assignment was made (the learners saw different checks).
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import exercises as ex_mod

FORMAT = "fromscratch-assignment/1"
MANIFEST_NAME = "manifest.json"


class ManifestError(ValueError):
    """The manifest is missing, malformed or out of date; the message says which."""


def normalize(source: str) -> str:
    """Cell source without trailing spaces and surrounding blank lines (for comparisons)."""
    return "\n".join(line.rstrip() for line in source.strip("\n").splitlines()).strip("\n")


def sha256(source: str) -> str:
    return hashlib.sha256(normalize(source).encode("utf-8")).hexdigest()


def strict_check(check: str, points: int | None = None) -> str:
    """The check cell with ``strict=True`` added to its final call, so that it raises
    :class:`~fromscratch.checks.core.CheckFailed` when the check does not pass. With
    ``points``, the result is printed and the cell's value is the number of points, which
    nbgrader's autograder reads as the cell's score (a failing check raises: 0)."""
    body, call = split_check(check)
    strict = call[:-1].rstrip()
    strict += ("" if strict.endswith("(") else ", ") + "strict=True)"
    if points is not None:
        strict = f"print({strict})\n{int(points)}  # points: reached only when the check passes"
    return (body + "\n\n" if body else "") + strict


def split_check(check: str) -> tuple:
    """``(statements before the final call, the final call)`` of a check cell."""
    source = normalize(check)
    tree = ast.parse(source)
    last = tree.body[-1] if tree.body else None
    if not (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)):
        raise ManifestError(f"a check cell must end with a call to a check:\n{source}")
    lines = source.splitlines()
    body = "\n".join(lines[: last.lineno - 1]).strip("\n")
    call = "\n".join(lines[last.lineno - 1:]).strip()
    if any(kw.arg == "strict" for kw in last.value.keywords):
        raise ManifestError(f"a check cell must not set strict= itself:\n{source}")
    return body, call


@dataclass
class Item:
    """One exercise of an assignment."""

    id: str
    chapter: str
    title: str
    points: int
    file: str
    check_sha256: list  # of the check cell as learners get it, and its strict variant
    setup_sha256: str | None = None


@dataclass
class Manifest:
    name: str
    title: str
    notebook: str
    exercises: list = field(default_factory=list)  # of Item
    format: str = FORMAT

    @property
    def chapters(self) -> list:
        return sorted({item.chapter for item in self.exercises})

    @property
    def total_points(self) -> int:
        return sum(item.points for item in self.exercises)

    def write(self, path: Path) -> None:
        data = asdict(self)
        data["total_points"] = self.total_points
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def load_exercises(self, allow_changed: bool = False) -> dict:
        """The exercises (``{id: Exercise}``) from the course package, checked against the
        hashes recorded when the assignment was made."""
        out = {}
        for item in self.exercises:
            try:
                exercise = ex_mod.get(item.id)
            except KeyError as exc:
                raise ManifestError(f"assignment {self.name!r}: {exc.args[0]}") from None
            if not allow_changed:
                if sha256(exercise.check) != item.check_sha256[0]:
                    raise ManifestError(
                        f"assignment {self.name!r}: the check of {item.id} "
                        f"({exercise.path}) changed since the assignment was made; run "
                        "fromscratch-assign again, or grade with --allow-changed-checks")
                if (sha256(exercise.setup) if exercise.setup else None) != item.setup_sha256:
                    raise ManifestError(
                        f"assignment {self.name!r}: the setup of {item.id} "
                        f"({exercise.path}) changed since the assignment was made; run "
                        "fromscratch-assign again, or grade with --allow-changed-checks")
            out[item.id] = exercise
        return out


def item_for(exercise, points: int | None = None) -> Item:
    check = exercise.check
    return Item(
        id=exercise.id, chapter=exercise.chapter, title=exercise.title,
        points=exercise.points if points is None else int(points),
        file=f"{exercise.chapter}/{exercise.path.name if exercise.path else ''}",
        check_sha256=[sha256(check), sha256(strict_check(check)),
                      sha256(strict_check(check, exercise.points if points is None
                                          else int(points)))],
        setup_sha256=sha256(exercise.setup) if exercise.setup else None,
    )


def load(path) -> Manifest:
    """Read a manifest: the file itself or the assignment folder that holds ``manifest.json``."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(
            f"{path}: no such manifest (make one with fromscratch-assign)") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{path}: not a fromscratch assignment manifest "
                            f"(expected \"format\": \"{FORMAT}\")")
    try:
        items = [Item(**item) for item in data["exercises"]]
        return Manifest(name=data["name"], title=data["title"], notebook=data["notebook"],
                        exercises=items)
    except (KeyError, TypeError) as exc:
        raise ManifestError(f"{path}: malformed manifest ({exc})") from None
