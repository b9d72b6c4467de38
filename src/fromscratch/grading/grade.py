"""Grade a folder of submissions into a CSV gradebook and one feedback file per student.

Each submission is copied into its own temporary folder and executed by a worker process
(:mod:`fromscratch.grading.execute`) in a fresh, sandboxed kernel
(:mod:`fromscratch.grading.sandbox`), with the pristine setup and check cells
(:mod:`fromscratch.grading.submissions`); the checks' results are read back from the
executed notebook, tagged with a random token of this run (:mod:`fromscratch.grading.runtime`).
Whatever goes wrong with one submission becomes that student's status; the run goes on.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from .. import exercises as ex_mod
from . import manifest as manifest_mod
from . import sandbox, submissions
from .runtime import MIME

# status codes, in the order they are listed in the gradebook
STATUSES = ("no-notebook", "ambiguous-submission", "invalid-notebook", "wrong-assignment",
            "grader-error", "kernel-died", "timeout", "output-limit", "missing-cells",
            "tampered", "read-reference", "cell-errors", "not-attempted")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Options:
    """Grading settings (the command line's options)."""

    workers: int = 2
    cell_timeout: int = 60  # seconds for one cell
    total_timeout: int = 300  # seconds for a whole notebook, all attempts together
    max_output_kb: int = 1024  # outputs kept per notebook
    reference: str = "flag"  # reading the reference solutions: "flag" or "zero"
    network: bool = True  # cut the kernel off the network where possible
    switch_user: bool = True  # run the kernel as 'nobody' when the grader is root
    save_executed: bool = False  # keep the executed notebooks in <out>/executed/
    allow_changed_checks: bool = False


@dataclass
class ExerciseResult:
    id: str
    title: str
    points: float
    max_points: int
    status: str  # passed, failed, not attempted, not run
    text: str


@dataclass
class StudentResult:
    student: str
    submission: str
    exercises: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # (code, message)
    notes: list = field(default_factory=list)
    cell_errors: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def status(self) -> str:
        codes = {code for code, _ in self.problems}
        return ";".join(c for c in STATUSES if c in codes) or "ok"


@dataclass
class Gradebook:
    manifest: manifest_mod.Manifest
    results: list
    csv_path: Path
    feedback_dir: Path
    isolation: sandbox.Isolation
    seconds: float


def grade(assignment, submissions_dir, out_dir, options: Options | None = None,
          progress: Callable[[str], None] | None = None) -> Gradebook:
    """Grade every submission in ``submissions_dir`` against ``assignment`` (a manifest file
    or its folder); write ``<out_dir>/gradebook.csv`` and ``<out_dir>/feedback/<student>.md``."""
    options = options or Options()
    if options.reference not in ("flag", "zero"):
        raise ValueError(f"reference policy must be 'flag' or 'zero', got {options.reference!r}")
    say = progress or (lambda line: None)
    start = time.monotonic()
    manifest = manifest_mod.load(assignment)
    exercises = manifest.load_exercises(allow_changed=options.allow_changed_checks)
    subs = submissions.discover(submissions_dir, manifest.name)
    isolation = sandbox.detect_isolation(options.network, options.switch_user)
    out = Path(out_dir)
    feedback_dir = out / "feedback"
    feedback_dir.mkdir(parents=True, exist_ok=True)
    say(f"grading {len(subs)} submission(s) of {manifest.name} "
        f"({len(manifest.exercises)} exercises, {manifest.total_points} points) "
        f"with {options.workers} worker(s)")
    for line in isolation.describe():
        say("  isolation: " + line)
    run_root = Path(tempfile.mkdtemp(prefix="fromscratch-grade-"))
    results = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
            futures = {pool.submit(_grade_one, n, sub, manifest, exercises, run_root,
                                   isolation, options, out): sub
                       for n, sub in enumerate(subs)}
            for done, future in enumerate(as_completed(futures), start=1):
                sub = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - a grader bug must not stop the run
                    result = _empty(sub, manifest, "grader-error",
                                    f"the grader failed: {type(exc).__name__}: {exc}")
                results.append(result)
                say(f"[{done:>{len(str(len(subs)))}}/{len(subs)}] {result.student}: "
                    f"{result.status}, {_fmt(result.total)}/{manifest.total_points} points "
                    f"({result.seconds:.1f} s)")
    finally:
        shutil.rmtree(run_root, ignore_errors=True)
    results.sort(key=lambda r: r.student)
    csv_path = out / "gradebook.csv"
    write_gradebook(csv_path, manifest, results)
    for result in results:
        path = feedback_dir / f"{submissions.safe_name(result.student)}.md"
        path.write_text(feedback(manifest, result), encoding="utf-8")
    seconds = time.monotonic() - start
    say(f"wrote {csv_path} and {len(results)} feedback file(s) in {feedback_dir} "
        f"({seconds:.0f} s)")
    return Gradebook(manifest, results, csv_path, feedback_dir, isolation, seconds)


def _empty(sub, manifest, code: str | None = None, message: str = "") -> StudentResult:
    result = StudentResult(sub.student, str(sub.path.name) if sub.path else "",
                           notes=list(sub.notes))
    result.problems = list(sub.problems) + ([(code, message)] if code else [])
    result.exercises = [ExerciseResult(i.id, i.title, 0, i.points, "not run", "") for i in
                        manifest.exercises]
    return result


def _grade_one(n, sub, manifest, exercises, run_root, isolation, options, out) -> StudentResult:
    started = time.monotonic()
    result = _grade_submission(n, sub, manifest, exercises, run_root, isolation, options, out)
    result.seconds = time.monotonic() - started
    return result


def _grade_submission(n, sub, manifest, exercises, run_root, isolation, options, out):
    if sub.problems or sub.path is None:
        return _empty(sub, manifest)
    nb, problem = submissions.read_notebook(sub.path)
    if nb is None:
        return _empty(sub, manifest, "invalid-notebook", problem)
    known = {ex.id for ex in ex_mod.load()}
    wrong = submissions.other_assignment(nb, manifest, known)
    if wrong:
        return _empty(sub, manifest, "wrong-assignment", wrong)
    token = secrets.token_hex(16)
    refs = [ex_mod.exercises_dir()]
    prepared = submissions.prepare(nb, manifest, exercises, token, refs)

    folder = run_root / f"{n:04d}-{submissions.safe_name(sub.student)}"
    workdir = folder / "work"
    (workdir / ".tmp").mkdir(parents=True)
    shutil.copyfile(sub.path, workdir / sub.path.name)
    sandbox.prepare_workdir(workdir, isolation.user)
    graded = folder / "graded.ipynb"
    nbformat.write(prepared.notebook, graded)
    job = {
        "notebook": str(graded), "output": str(folder / "executed.ipynb"),
        "info": str(folder / "info.json"), "workdir": str(workdir),
        "cell_timeout": options.cell_timeout, "total_timeout": options.total_timeout,
        "max_output_bytes": options.max_output_kb * 1024, "env": kernel_env(workdir),
        "ipc": isolation.ipc,
        "prefix": sandbox.kernel_prefix(isolation, workdir,
                                        cpu_seconds=2 * options.total_timeout + 60,
                                        file_size_mb=200),
    }
    (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
    result = _empty(sub, manifest)
    result.submission = str(sub.path.name)
    result.problems += prepared.problems
    result.notes += prepared.notes
    worker_error = _run_worker(folder / "job.json", options.total_timeout + 120)
    if worker_error:
        result.problems.append(("grader-error" if "timeout" not in worker_error else "timeout",
                                worker_error))
    try:
        executed = nbformat.read(folder / "executed.ipynb", as_version=4)
        info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        if not worker_error:
            result.problems.append(("grader-error", f"no executed notebook came back ({exc})"))
        return result
    _score(result, manifest, prepared, executed, info, token, options)
    if options.save_executed:
        (out / "executed").mkdir(exist_ok=True)
        nbformat.write(executed, out / "executed" / f"{submissions.safe_name(sub.student)}.ipynb")
    return result


def _run_worker(job_path: Path, limit: float) -> str | None:
    """Run the worker process; a message if it failed, None if it finished."""
    cmd = [sys.executable, "-m", "fromscratch.grading.execute", str(job_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env=_worker_env())
    try:
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"grading stopped after {limit:.0f} s (total timeout)"
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
        return f"the grading worker failed (exit {proc.returncode}): " + " | ".join(tail)
    return None


def _worker_env() -> dict:
    env = dict(os.environ)
    env.pop("FROMSCRATCH_STRICT_CHECKS", None)
    return env


def kernel_env(workdir: Path) -> dict:
    """The kernel's whole environment: nothing of the grader's (no tokens or keys)."""
    import fromscratch

    package_parent = Path(fromscratch.__file__).resolve().parents[1]
    home = str(workdir)
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin",
                                 "/usr/bin", "/bin"]),
        "HOME": home, "TMPDIR": str(workdir / ".tmp"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(package_parent), "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(workdir / ".tmp" / "matplotlib"),
        "IPYTHONDIR": str(workdir / ".tmp" / "ipython"),
        "JUPYTER_CONFIG_DIR": str(workdir / ".tmp" / "jupyter"),
        "JUPYTER_DATA_DIR": str(workdir / ".tmp" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(workdir / ".tmp" / "jupyter"),
        "FROMSCRATCH_PROGRESS": "0", "FROMSCRATCH_DEVICE": "cpu", "FROMSCRATCH_SCALE": "small",
    }


def _payloads(cell, token: str) -> list:
    found = []
    for output in cell.get("outputs", []):
        payload = (output.get("data") or {}).get(MIME)
        if isinstance(payload, dict) and payload.get("token") == token:
            found.append(payload)
    return found


def _score(result, manifest, prepared, executed, info, token, options) -> None:
    checks, start, end = {}, None, None
    reads, spawned, restored = [], [], []
    own_errors = {}  # exercise id -> the error its answer cell raised
    for index, (role, ex_id) in enumerate(prepared.roles):
        cell = executed.cells[index]
        if role == "student":
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                    error = _readable_error(output, cell.source)
                    result.cell_errors.append(f"cell {index}: `{first[:60]}` raised {error}")
                    if ex_id:
                        own_errors.setdefault(ex_id, error)
        if role not in ("preamble", "check", "end"):
            continue
        for payload in _payloads(cell, token):
            reads += [r for r in payload.get("reference_reads", []) if r not in reads]
            spawned += [s for s in payload.get("subprocesses", []) if s not in spawned]
            restored += [r for r in payload.get("restored_so_far", []) if r not in restored]
            if role == "check" and payload.get("kind") == "check" and \
                    payload.get("exercise") == ex_id and ex_id not in checks:
                checks[ex_id] = payload["result"]
            elif role == "preamble" and payload.get("kind") == "start":
                start = payload
            elif role == "end" and payload.get("kind") == "end":
                end = payload
        if role == "preamble" and start is None:
            errors = [f"{o.get('ename')}: {_ANSI.sub('', str(o.get('evalue')))}"
                      for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            result.problems.append(("grader-error", "the grading kernel did not start "
                                    + (errors[0] if errors else f"({info.get('outcome')})")))
    by_file = {Path(item.file).name: item.id for item in manifest.exercises}
    read_ids = {by_file[r] for r in reads if r in by_file}
    for exercise in result.exercises:
        payload = checks.get(exercise.id)
        if payload is None:
            exercise.text = "the check did not run (see the notes)."
            continue
        exercise.status = payload.get("status", "failed")
        exercise.text = str(payload.get("text", ""))
        if exercise.id in own_errors and exercise.status != "passed":
            exercise.text = (f"your answer cell for this exercise raised {own_errors[exercise.id]}"
                             "\n(fix that first: the check below ran without your code)\n\n"
                             + exercise.text)
        exercise.points = exercise.max_points if exercise.status == "passed" else 0
        if options.reference == "zero" and exercise.id in read_ids and exercise.points:
            exercise.points = 0
            exercise.text += "\n(0 points: the reference solution was read while grading)"
    _problems_from_run(result, info, reads, spawned, restored, end, executed, prepared)


def _readable_error(output, source: str) -> str:
    """``SyntaxError: expected ':' (line 5: `def f(x)`)`` instead of IPython's temporary
    file name (``(2937982192.py, line 5)``)."""
    ename = output.get("ename")
    evalue = _ANSI.sub("", str(output.get("evalue")))
    m = re.search(r"\s*\((?:<[^>]+>|[^()]*\.py), line (\d+)\)", evalue)
    if m:
        lines = source.splitlines()
        number = int(m.group(1))
        code = lines[number - 1].strip() if 0 < number <= len(lines) else ""
        where = f"line {number}" + (f": `{code[:60]}`" if code else "")
        evalue = evalue[: m.start()] + f" ({where})" + evalue[m.end():]
    return f"{ename}: {evalue[:200]}"


def _problems_from_run(result, info, reads, spawned, restored, end, executed, prepared) -> None:
    def where(index):
        if index is None:
            return "before the first cell"
        role, ex_id = prepared.roles[index]
        source = prepared.notebook.cells[index].source
        first = next((ln for ln in source.splitlines() if ln.strip()), "")
        what = f"the check of {ex_id}" if role == "check" else f"`{first[:60]}`"
        return f"cell {index} ({what})"

    for event in info.get("events", []):
        kind, cell = event.get("event"), event.get("cell")
        if kind == "timeout":
            result.problems.append(("timeout", f"{where(cell)} ran past the per-cell time "
                                    "limit; it was left out and the notebook run again"))
        elif kind == "total-timeout":
            result.problems.append(("timeout", f"the notebook ran past the total time limit "
                                    f"at {where(cell)}; later checks did not run"))
        elif kind == "kernel-died":
            result.problems.append(("kernel-died", f"the kernel died at {where(cell)} (memory, "
                                    "os._exit or a crash); it was left out and the notebook "
                                    "run again"))
        elif kind == "error":
            result.problems.append(("grader-error", event.get("message", "")))
    if info.get("outcome") == "too-many-failures":
        result.notes.append("gave up after several attempts; later checks did not run")
    if info.get("truncated"):
        result.problems.append(("output-limit", "the notebook printed more than the output "
                                "limit; the rest of the output was dropped"))
    if result.cell_errors:
        result.problems.append(("cell-errors", f"{len(result.cell_errors)} of your cells "
                                "raised an error"))
    if result.exercises and all(e.status == "not attempted" for e in result.exercises):
        result.problems.append(("not-attempted", "every exercise still raises "
                                "NotImplementedError (an untouched notebook?)"))
    if reads:
        result.problems.append(("read-reference", "read the reference solution(s) "
                                + ", ".join(sorted(reads))))
    if restored:
        result.problems.append(("tampered", "replaced " + ", ".join(sorted(restored)[:10])
                                + " (undone before the checks ran)"))
    if spawned:
        result.notes.append("started subprocess(es): " + "; ".join(spawned[:5]))
    if end is None and info.get("outcome") == "completed":
        result.notes.append("the grader's last cell did not report; results may be incomplete")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def write_gradebook(path: Path, manifest, results: list) -> None:
    """One row per student (sorted), one column per exercise, total, status and notes."""
    ids = [item.id for item in manifest.exercises]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["student", *ids, "total", "max", "status", "submission", "notes"])
        for r in sorted(results, key=lambda r: r.student):
            points = {e.id: e.points for e in r.exercises}
            notes = [m for _, m in r.problems] + r.notes
            writer.writerow([r.student, *(_fmt(points[i]) for i in ids), _fmt(r.total),
                             manifest.total_points, r.status, r.submission,
                             " | ".join(notes)])


def feedback(manifest, result: StudentResult) -> str:
    """The Markdown feedback file of one student."""
    lines = [f"# {manifest.title}: feedback for {result.student}", "",
             f"Assignment `{manifest.name}`, submission `{result.submission or '-'}`.", "",
             f"**Total: {_fmt(result.total)} / {manifest.total_points} points** "
             f"(status: {result.status})", "",
             "| # | Exercise | Points | Result |", "|---|---|---|---|"]
    for n, e in enumerate(result.exercises, start=1):
        lines.append(f"| {n} | {e.title} (`{e.id}`) | {_fmt(e.points)} / {e.max_points} "
                     f"| {e.status} |")
    problems = [m for _, m in result.problems] + result.notes
    if problems:
        lines += ["", "## About your submission", ""] + [f"- {m}" for m in problems]
    for n, e in enumerate(result.exercises, start=1):
        lines += ["", f"## {n}. {e.title}: {_fmt(e.points)} / {e.max_points}", ""]
        lines += ["```text", e.text or "(no result)", "```"]
    if result.cell_errors:
        lines += ["", "## Errors in your cells", ""] + [f"- {m}" for m in result.cell_errors]
    return "\n".join(lines) + "\n"
