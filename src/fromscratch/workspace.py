"""A learner's working copy of the chapters, outside the files git tracks.

JupyterLab saves a notebook while you work in it. Working in ``chapters/`` of a clone
therefore changes files that git tracks, and the next ``git pull`` stops with a conflict.
Instead, copy the chapters into ``workspace/`` (git ignores it) and work there::

    python -m fromscratch.workspace          # or: make workspace
    .venv/bin/jupyter lab workspace/

The copy holds ``chapters/`` (the executed notebooks), ``exercises/`` (each exercise's
file, which an exercise's prompt names) and ``intro.md`` (which the chapters link to), laid
out as in the repository, so the paths the notebooks show work from JupyterLab's file
browser.

Running it again never overwrites your work: a file you changed is kept as it is. A file
you did not change is updated when the course's version changed (after a ``git pull``), and
new chapters are added. What it did to each file is printed. A record of what was copied
(``.fromscratch-workspace.json``) tells your changes from the course's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Optional

#: the repository this package belongs to, when it runs from a clone (an editable install)
REPOSITORY = Path(__file__).resolve().parents[2]
RECORD = ".fromscratch-workspace.json"


def course_files(source: Path) -> list:
    """The files a working copy holds, as paths relative to ``source`` (the repository)."""
    files = sorted(p.relative_to(source) for p in (source / "chapters").glob("[0-9][0-9]_*.ipynb"))
    files += sorted(p.relative_to(source) for p in (source / "exercises").rglob("*")
                    if p.is_file() and p.suffix in (".py", ".md") and "__pycache__" not in p.parts)
    if (source / "intro.md").is_file():
        files.append(Path("intro.md"))
    return files


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_workspace(target: Optional[Path] = None, source: Path = REPOSITORY) -> dict:
    """Copy the course's chapters and exercises from ``source`` into ``target`` (by default
    ``workspace/`` of the repository) without overwriting a file the learner changed.

    Returns ``{relative path: what happened}``, each one of ``"copied"`` (new),
    ``"updated"`` (the learner had not changed it and the course's version changed),
    ``"unchanged"``, ``"yours"`` (the learner changed it, the course's is as copied) or
    ``"kept"`` (both changed: the learner's stays, the course's new version is left out).
    """
    source = Path(source)
    if not (source / "chapters").is_dir() or not (source / "exercises").is_dir():
        raise FileNotFoundError(
            f"no chapters/ and exercises/ in {source}: a working copy is made from a clone of "
            "the course's repository (git clone, then `make workspace` in it); an installed "
            "package has no chapters to copy")
    target = Path(target) if target is not None else source / "workspace"
    if target.resolve() in (source.resolve(), (source / "chapters").resolve()):
        raise ValueError(f"the working copy must be a folder of its own, not {target}")
    record_path = target / RECORD
    try:
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    done = {}
    for rel in course_files(source):
        key = rel.as_posix()
        src, dst = source / rel, target / rel
        new = _digest(src)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            done[key] = "copied"
        else:
            mine = _digest(dst)
            if mine == new:
                done[key] = "unchanged"
            elif record.get(key) == mine:  # as copied, untouched: safe to bring up to date
                shutil.copyfile(src, dst)
                done[key] = "updated"
            elif record.get(key) == new:  # changed by the learner; the course's is as copied
                done[key] = "yours"
            else:  # both changed (or no record of the copy): the learner's work stays
                done[key] = "kept"
                continue  # the record keeps what was copied before, so it stays "kept"
        record[key] = new
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fromscratch.workspace",
        description="Copy the chapters and exercises into a working folder that git ignores "
                    "(never overwriting a file you changed), then run JupyterLab there.")
    parser.add_argument("target", nargs="?", type=Path, default=None,
                        help="the working folder (default: workspace/ in the repository)")
    parser.add_argument("--source", type=Path, default=REPOSITORY,
                        help="the course's repository (default: the one this package is in)")
    args = parser.parse_args(argv)
    try:
        done = make_workspace(args.target, args.source)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    target = args.target if args.target is not None else args.source / "workspace"
    try:
        shown = os.path.relpath(target)
    except ValueError:  # another drive (Windows)
        shown = str(target)
    if shown.startswith(".."):
        shown = str(target)
    for what in ("copied", "updated", "kept"):
        names = [k for k, v in done.items() if v == what]
        if what == "kept" and names:
            print(f"kept your version of {len(names)} file(s) the course has changed since "
                  "(to get the course's, rename yours and run this again):")
            for name in names:
                print(f"  {name}")
        elif names:
            print(f"{what} {len(names)} file(s)")
    if all(v in ("unchanged", "yours") for v in done.values()):
        print("nothing to do: the working copy is up to date")
    print(f"Your working copy: {shown}/. Run the notebooks there: jupyter lab {shown}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
