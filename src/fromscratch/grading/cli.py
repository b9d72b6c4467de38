"""Command lines: ``fromscratch-assign`` and ``fromscratch-grade``."""

from __future__ import annotations

import argparse
import sys

from .assign import make_assignment
from .grade import Options, grade, slow_submissions
from .manifest import ManifestError
from .sandbox import SandboxUnavailable


def _points(values: list) -> dict:
    out = {}
    for value in values or []:
        key, sep, number = value.partition("=")
        if not sep or not number.strip().isdigit():
            raise SystemExit(f"--points {value!r}: write EXERCISE_ID=N, e.g. cnn-max-pool=5")
        out[key.strip()] = int(number)
    return out


def assign_main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fromscratch-assign",
        description="Make an assignment from the course's exercises: a learner's notebook "
        "<out>/<name>.ipynb, an nbgrader source notebook <out>/source/<name>/<name>.ipynb "
        "and <out>/manifest.json, which fromscratch-grade needs.")
    parser.add_argument("chapters", nargs="+", metavar="CHAPTER",
                        help="chapter(s) whose exercises to use, e.g. cnn rnn")
    parser.add_argument("-e", "--exercises", nargs="+", metavar="ID",
                        help="only these exercise ids, in this order (default: all exercises "
                        "of the chapters)")
    parser.add_argument("-p", "--points", nargs="+", metavar="ID=N",
                        help="override an exercise's points, e.g. cnn-max-pool=5 "
                        "(default: the points in the exercise file)")
    parser.add_argument("-n", "--name", help="assignment name, also the notebook's file name "
                        "(default: the chapters joined by '-')")
    parser.add_argument("-t", "--title", help="title shown at the top of the notebook")
    parser.add_argument("-o", "--out", help="output folder (default: assignments/<name>)")
    args = parser.parse_args(argv)
    name = args.name or "-".join(args.chapters)
    try:
        made = make_assignment(args.chapters, args.out or f"assignments/{name}",
                               exercises=args.exercises, points=_points(args.points),
                               name=name, title=args.title)
    except (ValueError, KeyError) as exc:
        print(f"fromscratch-assign: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    m = made.manifest
    print(f"assignment {m.name}: {len(m.exercises)} exercises, {m.total_points} points")
    for item in m.exercises:
        print(f"  {item.id:<24} {item.points} points  {item.title}")
    print(f"learners' notebook: {made.student_notebook}")
    print(f"nbgrader source:    {made.source_notebook}")
    print(f"manifest:           {made.manifest_path}")
    return 0


def grade_main(argv: list | None = None) -> int:
    d = Options()
    parser = argparse.ArgumentParser(
        prog="fromscratch-grade",
        description="Grade submitted notebooks: each in its own bubblewrap sandbox, where "
        "each exercise's answer cell runs on its own with the assignment's original set-up "
        "and check. Writes "
        "<out>/gradebook.csv and <out>/feedback/<student>.md.")
    parser.add_argument("assignment", help="the assignment's manifest.json, or its folder")
    parser.add_argument("submissions", help="folder of submissions: <student>.ipynb, or "
                        "<student>/<assignment>.ipynb (nbgrader's submitted/ layout works too)")
    parser.add_argument("-o", "--out", default="grades",
                        help="output folder (default: %(default)s)")
    parser.add_argument("-w", "--workers", type=int, default=d.workers,
                        help="notebooks graded at the same time, about one per CPU core "
                        "(default: %(default)s)")
    parser.add_argument("--cell-timeout", type=int, default=d.cell_timeout, metavar="S",
                        help="CPU seconds one answer cell may use (its own processes' CPU "
                        "time; twice as long on the clock at most) (default: %(default)s)")
    parser.add_argument("--check-timeout", type=int, default=d.check_timeout, metavar="S",
                        help="CPU seconds one check may use (it calls the answer; some checks "
                        "train a model) (default: %(default)s)")
    parser.add_argument("--timeout", type=int, default=d.total_timeout, metavar="S",
                        help="CPU seconds for one whole submission, start-up included (time "
                        "on the clock where no cgroup can be made) (default: %(default)s)")
    parser.add_argument("--max-output-kb", type=int, default=d.max_output_kb, metavar="KB",
                        help="learner output read per submission; the rest is dropped and the "
                        "submission marked output-limit (default: %(default)s)")
    parser.add_argument("--reference", choices=("flag", "zero"), default=d.reference,
                        help="an answer that tries to read the reference solutions (they are "
                        "not visible in the sandbox) is marked read-reference; 'zero' also "
                        "gives 0 points for those exercises (default: %(default)s)")
    parser.add_argument("--memory-mb", type=int, default=d.memory_mb, metavar="MB",
                        help="memory of each sandbox: its processes and its files in memory "
                        "together, where a cgroup can be made; always the address space of "
                        "each process (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=d.processes, metavar="N",
                        help="processes and threads per sandbox (default: %(default)s)")
    parser.add_argument("--disk-mb", type=int, default=d.disk_mb, metavar="MB",
                        help="size of each sandbox's writable work copy (default: %(default)s)")
    parser.add_argument("--restart", action="store_true",
                        help="grade every submission again instead of resuming the finished "
                        "rows of an earlier run into the same output folder")
    parser.add_argument("--allow-changed-checks", action="store_true",
                        help="grade even if a check or set-up cell changed since the "
                        "assignment was made")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="grade without the bubblewrap sandbox (learner code can then read "
                        "and write whatever you can): only for a class you trust, or where "
                        "bwrap cannot run")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    options = Options(workers=args.workers, cell_timeout=args.cell_timeout,
                      check_timeout=args.check_timeout, total_timeout=args.timeout,
                      max_output_kb=args.max_output_kb, reference=args.reference,
                      memory_mb=args.memory_mb, processes=args.processes,
                      disk_mb=args.disk_mb, allow_changed_checks=args.allow_changed_checks,
                      unsafe_no_sandbox=args.unsafe_no_sandbox, resume=not args.restart)
    say = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        book = grade(args.assignment, args.submissions, args.out, options, progress=say)
    except (ManifestError, FileNotFoundError, ValueError, SandboxUnavailable) as exc:
        print(f"fromscratch-grade: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the sandboxes are ended and every finished row is kept
        print(f"fromscratch-grade: interrupted; the finished rows are in {args.out}: run the "
              "same command again to grade the rest", file=sys.stderr)
        return 130
    counts: dict = {}
    for r in book.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"{len(book.results)} graded: {summary}"
          + (f" ({book.resumed} resumed from an earlier run)" if book.resumed else ""))
    slow = slow_submissions(book.results)
    if slow:
        print(f"{len(slow)} slow: " + "; ".join(f"{n} ({w})" for n, w in slow)
              + " (worth a look: listed in slow.txt, not in the gradebook)")
    if book.skipped:
        print(f"{len(book.skipped)} entr{'y' if len(book.skipped) == 1 else 'ies'} skipped: "
              + "; ".join(f"{n} ({r})" for n, r in book.skipped))
    print(f"gradebook: {book.csv_path}")
    return 0


def assign_entry() -> None:
    sys.exit(assign_main())


def grade_entry() -> None:
    sys.exit(grade_main())


if __name__ == "__main__":
    grade_entry()
