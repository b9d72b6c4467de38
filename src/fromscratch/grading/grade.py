"""Grade a folder of submissions into a CSV gradebook and one feedback file per student.

Each submission is graded in its own bubblewrap sandbox (:mod:`fromscratch.grading.sandbox`)
by the checker (:mod:`fromscratch.grading.checker`): the pristine set-up cells, then each
exercise's answer cell on its own with the pristine check, in a process learner code never
shares with the grader. The checker's results come back over a pipe that only the
checker's PID 1 holds. Whatever goes wrong with one submission becomes that student's
status; the run goes on.

Nothing is lost: every finished submission is appended to ``<out>/.journal.jsonl`` and the
gradebook and its feedback file are rewritten at once, so a grader killed halfway leaves
every finished row, and running it again resumes (a submission whose file, assignment
and options are unchanged is not graded again). Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import exercises as ex_mod
from . import manifest as manifest_mod
from . import sandbox, submissions

# status codes, in the order they are listed in the gradebook
STATUSES = ("no-notebook", "ambiguous-submission", "invalid-notebook", "wrong-assignment",
            "grader-error", "kernel-died", "timeout", "output-limit", "missing-cells",
            "tampered", "read-reference", "cell-errors", "not-attempted")
JOURNAL = ".journal.jsonl"
WALL_FACTOR = 2  # wall-clock backstop of a limit counted in CPU time, as a multiple of it
SLOW = "slow.txt"  # submissions that took much longer than the class's typical one
_ISOLATION_CACHE: dict = {}
# Ctrl-C: the sandboxes running now, and whether new ones may start (one grading run at a time)
_RUNNING: set = set()
_RUN_LOCK = threading.Lock()
_STOPPING = threading.Event()


@dataclass
class Options:
    """Grading settings (the command line's options)."""

    workers: int = 2
    cell_timeout: int = 60  # seconds for one answer cell
    check_timeout: int = 180  # seconds for one check (it calls the answer; some train)
    total_timeout: int = 600  # seconds for a whole submission, start-up included
    max_output_kb: int = 1024  # learner output read per submission; the rest is dropped
    reference: str = "flag"  # trying to read the reference solutions: "flag" or "zero"
    memory_mb: int = 4096
    processes: int = 64
    disk_mb: int = 200
    allow_changed_checks: bool = False
    unsafe_no_sandbox: bool = False  # no bubblewrap: only for a class you trust
    resume: bool = True  # reuse finished rows of an earlier run into the same folder


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StudentResult:
        data = dict(data)
        data["exercises"] = [ExerciseResult(**e) for e in data.get("exercises", [])]
        data["problems"] = [tuple(p) for p in data.get("problems", [])]
        return cls(**data)


@dataclass
class Gradebook:
    manifest: manifest_mod.Manifest
    results: list
    csv_path: Path
    feedback_dir: Path
    isolation: sandbox.Isolation
    seconds: float
    skipped: list = field(default_factory=list)  # (entry name, reason)
    resumed: int = 0


def isolation_for(options: Options) -> sandbox.Isolation:
    """The sandbox set-up (probed once per process)."""
    key = bool(options.unsafe_no_sandbox)
    if key not in _ISOLATION_CACHE:
        _ISOLATION_CACHE[key] = sandbox.detect(unsafe_no_sandbox=key)
    return _ISOLATION_CACHE[key]


def grade(assignment, submissions_dir, out_dir, options: Options | None = None,
          progress: Callable[[str], None] | None = None) -> Gradebook:
    """Grade every submission in ``submissions_dir`` against ``assignment`` (a manifest file
    or its folder); write ``<out_dir>/gradebook.csv`` and ``<out_dir>/feedback/<name>.md``
    as each submission finishes. Raises :class:`sandbox.SandboxUnavailable` when no
    sandbox can be made here (see ``Options.unsafe_no_sandbox``)."""
    options = options or Options()
    if options.reference not in ("flag", "zero"):
        raise ValueError(f"reference policy must be 'flag' or 'zero', got {options.reference!r}")
    say = progress or (lambda line: None)
    start = time.monotonic()
    manifest = manifest_mod.load(assignment)
    exercises = manifest.load_exercises(allow_changed=options.allow_changed_checks)
    subs, skipped = submissions.discover(submissions_dir, manifest.name)
    isolation = isolation_for(options)
    out = Path(out_dir)
    feedback_dir = out / "feedback"
    feedback_dir.mkdir(parents=True, exist_ok=True)
    names = submissions.feedback_names([s.student for s in subs])
    say(f"grading {len(subs)} submission(s) of {manifest.name} "
        f"({len(manifest.exercises)} exercises, {manifest.total_points} points) "
        f"with {options.workers} worker(s)")
    for name, reason in skipped:
        say(f"  skipped {name}: {reason}")
    for line in isolation.describe():
        say("  isolation: " + line)
    journal = _Journal(out / JOURNAL, _settings_key(manifest, options), options.resume)
    csv_path = out / "gradebook.csv"
    results: dict = {}
    lock = threading.Lock()

    def record(sub, result, fresh: bool) -> None:
        with lock:
            if fresh and _STOPPING.is_set():
                return  # its sandbox was ended by Ctrl-C: not a result
            results[sub.student] = result
            if fresh:
                journal.append(result.student, sub.key, result)
            path = feedback_dir / f"{names[result.student]}.md"
            _atomic_write(path, feedback(manifest, result))
            write_gradebook(csv_path, manifest, list(results.values()))

    todo, resumed = [], 0
    for sub in subs:
        sub.key = _submission_key(sub)
        old = journal.get(sub.student, sub.key)
        if old is not None:
            record(sub, old, fresh=False)
            resumed += 1
        else:
            todo.append(sub)
    if resumed:
        say(f"  resumed {resumed} row(s) finished by an earlier run (--restart grades all again)")
    write_gradebook(csv_path, manifest, list(results.values()))
    if skipped:
        _atomic_write(out / "skipped.txt", "".join(f"{n}\t{r}\n" for n, r in skipped))
    width = len(str(len(todo)))
    state = None
    _STOPPING.clear()
    pool = ThreadPoolExecutor(max_workers=max(1, options.workers))
    try:
        if todo:
            state = setup_state(isolation, manifest, exercises, options)
            if state is not None:
                say(f"  set-up run once in a sandbox and shared ({len(state) // 1024} kB)")

        def work(sub) -> StudentResult:  # recorded as soon as it is done, by its worker
            try:
                result = _grade_one(sub, manifest, exercises, isolation, options, state)
            except Exception as exc:  # noqa: BLE001 - a grader bug must not stop the run
                result = _empty(sub, manifest, "grader-error",
                                f"the grader failed: {type(exc).__name__}: {exc}")
            record(sub, result, fresh=True)
            return result

        futures = {pool.submit(work, sub): sub for sub in todo}
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            say(f"[{done:>{width}}/{len(todo)}] {result.student}: {result.status}, "
                f"{_fmt(result.total)}/{manifest.total_points} points ({result.seconds:.1f} s)")
    except KeyboardInterrupt:
        stop_sandboxes()
        pool.shutdown(wait=True, cancel_futures=True)
        with lock:
            write_gradebook(csv_path, manifest, list(results.values()))
        say(f"interrupted: {len(results)} finished row(s) kept in {csv_path}; run the same "
            "command again to grade the rest")
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    ordered = [results[s.student] for s in subs]
    write_gradebook(csv_path, manifest, ordered)
    slow = slow_submissions(ordered)
    if slow:
        _atomic_write(out / SLOW, "".join(f"{n}\t{why}\n" for n, why in slow))
        for name, why in slow:
            say(f"  slow: {name}: {why}")
    elif (out / SLOW).exists():
        (out / SLOW).unlink()
    seconds = time.monotonic() - start
    say(f"wrote {csv_path} and {len(ordered)} feedback file(s) in {feedback_dir} "
        f"({seconds:.0f} s)")
    return Gradebook(manifest, ordered, csv_path, feedback_dir, isolation, seconds, skipped,
                     resumed)


def stop_sandboxes() -> None:
    """Ctrl-C: start no more sandboxes and end the running ones (each is its own process
    group); their workers return at once and their rows are not recorded."""
    with _RUN_LOCK:
        _STOPPING.set()
        for proc in list(_RUNNING):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def slow_submissions(results: list, factor: float = 3.0, floor: float = 30.0) -> list:
    """``(student, why)`` for the submissions graded this run that took more than
    ``factor`` times the class's median time and more than ``floor`` seconds: a submission
    can stay just under every limit and so cost up to ``--timeout`` at full marks; this
    names it, for you to look at (it is not written into the gradebook, which must not
    depend on timing)."""
    times = sorted(r.seconds for r in results if r.seconds > 0)
    if not times:
        return []
    median = times[len(times) // 2]
    return [(r.student, f"graded in {r.seconds:.0f} s, {r.seconds / max(median, 0.1):.0f}x "
             f"the class's median ({median:.1f} s)")
            for r in sorted(results, key=lambda r: -r.seconds)
            if r.seconds > floor and r.seconds > factor * median]


class _Journal:
    """Finished rows, one JSON line each, appended and synced as they finish."""

    def __init__(self, path: Path, settings: str, resume: bool):
        self.path, self.settings = path, settings
        self.rows: dict = {}
        if resume and path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    row = json.loads(line)
                    if row.get("settings") == settings:
                        self.rows[(row["student"], row["key"])] = row["result"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a killed grader
        elif path.exists():
            path.unlink()

    def get(self, student: str, key: str):
        data = self.rows.get((student, key))
        try:
            return StudentResult.from_dict(data) if data else None
        except TypeError:
            return None

    def append(self, student: str, key: str, result: StudentResult) -> None:
        line = json.dumps({"settings": self.settings, "student": student, "key": key,
                           "result": result.to_dict()})
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _settings_key(manifest, options: Options) -> str:
    data = json.dumps([asdict(manifest), {k: v for k, v in asdict(options).items()
                                          if k not in ("workers", "resume")}],
                      sort_keys=True, default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def _submission_key(sub) -> str:
    h = hashlib.sha256(repr((sub.student, str(sub.path), sub.problems, sub.notes)).encode())
    if sub.path is not None:
        data, problem = submissions.read_bytes(sub.path)
        h.update(data if data is not None else problem.encode())
    return h.hexdigest()[:24]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # a short name, never too long
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _empty(sub, manifest, code: str | None = None, message: str = "") -> StudentResult:
    result = StudentResult(sub.student, submissions.shown(sub.path.name) if sub.path else "",
                           notes=list(sub.notes))
    result.problems = list(sub.problems) + ([(code, message)] if code else [])
    result.exercises = [ExerciseResult(i.id, i.title, 0, i.points, "not run", "") for i in
                        manifest.exercises]
    return result


def _grade_one(sub, manifest, exercises, isolation, options, state=None) -> StudentResult:
    started = time.monotonic()
    result = _grade_submission(sub, manifest, exercises, isolation, options, state)
    result.seconds = time.monotonic() - started
    return result


def _grade_submission(sub, manifest, exercises, isolation, options, state) -> StudentResult:
    if sub.problems or sub.path is None:
        return _empty(sub, manifest)
    data, problem = submissions.read_bytes(sub.path)
    if data is None:
        return _empty(sub, manifest, "invalid-notebook", problem)
    nb, problem = submissions.read_notebook(sub.path, data)
    if nb is None:
        return _empty(sub, manifest, "invalid-notebook", problem)
    known = {ex.id for ex in ex_mod.load()}
    wrong = submissions.other_assignment(nb, manifest, known)
    if wrong:
        return _empty(sub, manifest, "wrong-assignment", wrong)
    prepared = submissions.prepare(nb, manifest, exercises)
    limits = sandbox.Limits(memory_mb=options.memory_mb, processes=options.processes,
                            disk_mb=options.disk_mb,
                            cpu_seconds=options.total_timeout + 60)
    job = dict(prepared.job, cell_timeout=options.cell_timeout,
               check_timeout=options.check_timeout, limits=asdict(limits))
    result = _empty(sub, manifest)
    result.submission = submissions.shown(sub.path.name)
    result.problems += prepared.problems
    result.notes += prepared.notes
    run = _run_checker(isolation, limits, job, data, sub.path.name, options, state=state)
    _score(result, manifest, run, options)
    if run.out_of_memory:
        result.notes.append(f"the submission reached its memory limit ({options.memory_mb} MB "
                            "for all its processes and files together); the process using "
                            "the most was ended")
    return result


@dataclass
class _Run:
    events: list
    output_bytes: int
    output_tail: bytes
    truncated: bool
    timed_out: bool
    returncode: int | None
    seconds: float
    out_of_memory: bool = False  # the sandbox's cgroup reached its memory cap


def setup_state(isolation, manifest, exercises, options: Options) -> bytes | None:
    """Run the assignment's pristine set-up once, in a sandbox, and return its namespace
    (pickled), which every submission's sandbox then loads instead of running the set-up
    (for example training a CNN) again. None when there is no set-up or it cannot be saved."""
    setup = [{"id": i.id, "source": exercises[i.id].setup} for i in manifest.exercises
             if exercises[i.id].setup]
    if not setup:
        return None
    limits = sandbox.Limits(memory_mb=options.memory_mb, processes=options.processes,
                            disk_mb=options.disk_mb, cpu_seconds=options.total_timeout + 60)
    job = {"chapters": manifest.chapters, "setup": setup, "exercises": [], "save_state": True,
           "cell_timeout": options.cell_timeout, "check_timeout": options.check_timeout,
           "limits": asdict(limits)}
    state = os.memfd_create("state")
    try:
        run = _run_checker(isolation, limits, job, None, "setup.ipynb", options, state_fd=state,
                           state_writable=True)
        if not any(e.get("event") == "state" and e.get("saved") for e in run.events
                   if isinstance(e, dict)):
            return None
        os.lseek(state, 0, os.SEEK_SET)
        with os.fdopen(os.dup(state), "rb") as fh:
            return fh.read()
    finally:
        os.close(state)


def _run_checker(isolation, limits, job: dict, notebook: bytes | None, name: str,
                 options: Options, state: bytes | None = None, state_fd: int | None = None,
                 state_writable: bool = False) -> _Run:
    """Start the sandbox, feed it the job, read events and output, all within bounded time."""
    notebook_name = submissions.safe_name(name.removesuffix(".ipynb")) + ".ipynb"
    box = sandbox.Sandbox(isolation, limits, notebook=notebook, notebook_name=notebook_name)
    judged = bool(job.get("exercises"))
    if judged:  # the judge's requests to the sandbox (see fromscratch.grading.judge)
        requests_read, requests_write = os.pipe()
        job = dict(job, requests_fd=box._keep(requests_read))
    job_fd = box._memfd(json.dumps(job).encode("utf-8"), "job")
    read_end, write_end = os.pipe()
    box._keep(write_end)
    inner = sandbox.python_command("fromscratch.grading.checker", str(job_fd), str(write_end))
    if state is not None:
        inner.append(str(box._memfd(state, "state")))
    elif state_fd is not None and state_writable:
        inner.append(str(box._keep(os.dup(state_fd))))
    workdir = None
    cmd = box.command(inner)
    kwargs = box.popen_kwargs()
    if not isolation.sandboxed:
        workdir = tempfile.mkdtemp(prefix="fromscratch-grade-")
        env = sandbox.kernel_env()
        env.update(HOME=workdir, TMPDIR=workdir, MPLCONFIGDIR=workdir)
        if notebook is not None:
            (Path(workdir) / notebook_name).write_bytes(notebook)
        kwargs.update(env=env, cwd=workdir)
    started = time.monotonic()
    # The total time counts the sandbox's own CPU time where its cgroup measures it (a busy
    # neighbour does not use it up), with a wall-clock backstop of twice as long for code
    # that waits without computing; elsewhere it is wall-clock time.
    cpu_budget = options.total_timeout if box.cgroup is not None else None
    deadline = started + options.total_timeout * (WALL_FACTOR if cpu_budget else 1)
    limit = options.max_output_kb * 1024
    events, buffer, tail = [], b"", b""
    output_bytes, timed_out = 0, False
    judge = None
    if judged:
        judge, events_end = _start_judge(job, read_end, requests_write, state)
        if judge is None:
            box.close()
            return _Run([{"event": "start-failed", "error": "the judge did not start"}], 0,
                        b"", False, False, None, 0.0)
        read_end = events_end  # the grader reads the judge's verdicts, not the sandbox's
    try:
        with _RUN_LOCK:  # Ctrl-C ends every sandbox it finds here, and no new one starts
            if _STOPPING.is_set():
                raise OSError("grading was interrupted")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, **kwargs)
            _RUNNING.add(proc)
    except OSError as exc:
        box.close()
        box.release()
        os.close(read_end)
        if workdir:
            _remove_tree(workdir)
        _stop(judge)
        return _Run([{"event": "start-failed", "error": str(exc)}], 0, b"", False, False,
                    None, 0.0)
    box.close()  # the sandbox holds its own copies now
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ, "output")
    selector.register(read_end, selectors.EVENT_READ, "events")
    open_streams = 2
    exited_at = None
    try:
        while open_streams:
            now = time.monotonic()
            if now >= deadline or (cpu_budget and (box.cgroup.cpu_seconds() or 0) > cpu_budget):
                timed_out = True
                break
            if proc.poll() is not None:
                exited_at = exited_at or now
                if now - exited_at > 2.0:  # the sandbox is gone; nothing more can come
                    break
            for key, _ in selector.select(timeout=min(0.5, deadline - now)):
                fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
                chunk = os.read(fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    open_streams -= 1
                elif key.data == "output":
                    output_bytes += len(chunk)
                    tail = (tail + chunk)[-4096:]
                else:
                    buffer += chunk
                    if len(buffer) > 4 << 20:
                        buffer = b""
                        events.append({"event": "oversized"})
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        try:
                            events.append(json.loads(line.decode("utf-8")))
                        except ValueError:
                            events.append({"event": "garbage"})
    finally:
        with _RUN_LOCK:
            _RUNNING.discard(proc)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _stop(judge)
        selector.close()
        proc.stdout.close()
        os.close(read_end)
        out_of_memory = box.cgroup is not None and box.cgroup.out_of_memory()
        box.release()
        if workdir:
            _remove_tree(workdir)
    return _Run(events, output_bytes, tail, output_bytes > limit, timed_out, proc.returncode,
                time.monotonic() - started, out_of_memory)


def _remove_tree(path: str) -> None:
    """Remove a work folder, however deeply nested (without recursion)."""
    from .checker import empty_folder

    empty_folder(path)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _start_judge(job: dict, sandbox_events: int, requests: int, state: bytes | None):
    """Start the judge (:mod:`fromscratch.grading.judge`) beside the sandbox: a pristine
    process outside it, with the environment graded code gets, that reads the sandbox's
    events, sends it the check's calls and writes the verdicts. Returns ``(process, the
    read end of its verdicts)``; the descriptors handed to it are closed here."""
    def memfd(data: bytes, label: str) -> int:
        fd = os.memfd_create(label)
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    verdicts_read, verdicts_write = os.pipe()
    fds = [memfd(json.dumps(job).encode("utf-8"), "judge-job"), sandbox_events, requests,
           verdicts_write]
    if state is not None:
        fds.append(memfd(state, "judge-state"))
    home = tempfile.mkdtemp(prefix="fromscratch-judge-")
    env = sandbox.kernel_env()
    env.update(HOME=home, TMPDIR=home, MPLCONFIGDIR=home)
    try:
        proc = subprocess.Popen(sandbox.python_command("fromscratch.grading.judge",
                                                       *map(str, fds)),
                                pass_fds=tuple(fds), env=env, cwd=home,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                start_new_session=True)
        proc.home = home
    except OSError:
        proc = None
        shutil.rmtree(home, ignore_errors=True)
        os.close(verdicts_read)
    for fd in fds:
        os.close(fd)
    return proc, (verdicts_read if proc is not None else None)


def _stop(judge) -> None:
    if judge is None:
        return
    if judge.poll() is None:
        try:
            os.killpg(judge.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            judge.kill()
    try:
        judge.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    shutil.rmtree(judge.home, ignore_errors=True)


def _score(result: StudentResult, manifest, run: _Run, options: Options) -> None:
    events = [e for e in run.events if isinstance(e, dict)]
    by_ex = {}
    for event in events:
        if event.get("event") == "result" and event.get("exercise") not in by_ex:
            by_ex[event.get("exercise")] = event
    ready = any(e.get("event") == "ready" for e in events)
    ended = any(e.get("event") == "end" for e in events)
    for event in events:
        if event.get("event") == "setup-error":
            result.problems.append(("grader-error", f"the assignment's set-up for "
                                    f"{event.get('exercise')} failed: {event.get('error')}"))
        elif event.get("event") in ("garbage", "oversized", "start-failed"):
            result.problems.append(("grader-error", f"the checker sent {event.get('event')} "
                                    + str(event.get("error", ""))))
    if not ready:
        tail = run.output_tail.decode("utf-8", "replace").strip().splitlines()[-3:]
        why = ("ran past the total time limit before it was ready" if run.timed_out
               else f"exit {run.returncode}: " + " | ".join(tail))
        result.problems.append(("grader-error", f"the grading sandbox did not start ({why})"))
    reads = []
    for exercise in result.exercises:
        event = by_ex.get(exercise.id)
        if event is None:
            exercise.text = "the check did not run (see the notes)."
            continue
        _score_exercise(result, exercise, event, options)
        reads += event.get("reference") or []
    if ready and not ended:
        if run.timed_out:
            result.problems.append(("timeout", f"grading ran past the total time limit "
                                    f"({options.total_timeout} s); the exercises not graded "
                                    "by then score 0"))
        else:
            result.problems.append(("grader-error", "the checker stopped before the end "
                                    f"(exit {run.returncode})"))
    if run.truncated:
        result.problems.append(("output-limit", f"the answers printed {run.output_bytes // 1024}"
                                f" kB, more than the {options.max_output_kb} kB output limit; "
                                "the rest was dropped"))
    if result.cell_errors:
        result.problems.append(("cell-errors", f"{len(result.cell_errors)} of your answer "
                                "cells raised an error"))
    if result.exercises and all(e.status == "not attempted" for e in result.exercises):
        result.problems.append(("not-attempted", "every exercise still raises "
                                "NotImplementedError (an untouched notebook?)"))
    if reads:
        result.problems.append(("read-reference", "tried to open the reference solution(s) "
                                + ", ".join(sorted(set(reads))[:5])))


def _score_exercise(result, exercise, event, options) -> None:
    ex_id = exercise.id
    outcome = str(event.get("outcome", ""))
    error = event.get("answer_error")
    if isinstance(error, dict) and error.get("type") != "NotImplementedError":
        where = f" (line {error['line']}" + (f": `{error['code']}`" if error.get("code") else "") \
            + ")" if error.get("line") else ""
        text = f"{error.get('type')}: {error.get('message')}{where}"
        result.cell_errors.append(f"answer to {ex_id}: {text}")
        error_text = text
    else:
        error_text = None
    if outcome.startswith("timeout-answer"):
        result.problems.append(("timeout", f"the answer cell of {ex_id} ran past the per-cell "
                                f"time limit ({options.cell_timeout} s); it was stopped"))
    elif outcome.startswith("timeout-check"):
        result.problems.append(("timeout", f"the check of {ex_id} ran past its time limit "
                                f"({options.check_timeout} s) running your code"))
    elif outcome.startswith("died-") or outcome.startswith("exit-"):
        result.problems.append(("kernel-died", f"the process grading {ex_id} ended abruptly "
                                f"({outcome}: memory limit, os._exit or a crash)"))
    elif outcome == "oversized":
        result.problems.append(("tampered", f"the process grading {ex_id} sent more than "
                                "any check result; the exercise scores 0"))
    for flag in (event.get("flags") or []) + (event.get("warnings") or []):
        result.problems.append(("tampered", f"{ex_id}: {flag}"))
    restored = event.get("restored") or []
    if restored:
        result.problems.append(("tampered", f"{ex_id}: replaced " + ", ".join(restored[:8])
                                + " (put back before the check ran)"))
    for note in (event.get("subprocesses") or [])[:3]:
        result.notes.append(f"{ex_id}: started a subprocess ({note})")
    for note in (event.get("notes") or [])[:3]:
        result.notes.append(f"{ex_id}: {note}")
    payload = event.get("result")
    if not isinstance(payload, dict):
        if outcome == "ok" and not event.get("answer_ran"):
            result.problems.append(("kernel-died", f"the answer to {ex_id} ended its process "
                                    "before the check ran"))
        exercise.text = "the check did not finish (see the notes)."
        return
    exercise.status = payload.get("status", "failed")
    exercise.text = str(payload.get("text", ""))
    refused = payload.get("refused")
    if refused and exercise.status != "passed":  # the check's rule, stated in the gradebook
        result.notes.append(f"{ex_id}: refused: the answer ran {str(refused)[:160]}, an "
                            "implementation the course ships (or the check's own code); "
                            "checks decide by what an answer executes, so this scores 0")
    if error_text and exercise.status != "passed":
        exercise.text = (f"your answer cell for this exercise raised {error_text}"
                         "\n(fix that first: the check below ran on what the cell had "
                         "defined before the error)\n\n" + exercise.text)
    tampered_here = bool(event.get("flags")) or outcome == "oversized"
    exercise.points = exercise.max_points if exercise.status == "passed" and not \
        tampered_here else 0
    if tampered_here and exercise.status == "passed":
        exercise.text += "\n(0 points: the answer tampered with its own check; see the notes)"
    if options.reference == "zero" and event.get("reference") and exercise.points:
        exercise.points = 0
        exercise.text += "\n(0 points: the answer tried to read the reference solutions)"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_safe(value: str) -> str:
    """A text cell that no spreadsheet runs as a formula (OWASP: prefix with ')."""
    value = str(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_gradebook(path: Path, manifest, results: list) -> None:
    """One row per student (sorted), one column per exercise, total, status and notes;
    written to a temporary file and renamed, so the file is always whole."""
    ids = [item.id for item in manifest.exercises]
    fh = io.StringIO()
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(["student", *ids, "total", "max", "status", "submission", "notes"])
    for r in sorted(results, key=lambda r: r.student):
        points = {e.id: e.points for e in r.exercises}
        notes = [m for _, m in r.problems] + r.notes
        writer.writerow([csv_safe(r.student), *(_fmt(points[i]) for i in ids), _fmt(r.total),
                         manifest.total_points, r.status, csv_safe(r.submission),
                         csv_safe(" | ".join(notes))])
    _atomic_write(Path(path), fh.getvalue())


def _md(text: str) -> str:
    """Text from a submission (a file name, a student id) as plain Markdown text on one
    line: no HTML, links, emphasis, code or table breaks."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|#!~])", r"\\\1", text)


def _fenced(lines: list) -> list:
    """Lines shown verbatim: a fenced block longer than any run of backticks inside it (a
    submission's text cannot close it early)."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", *lines, fence]


def feedback(manifest, result: StudentResult) -> str:
    """The Markdown feedback file of one student. Everything that comes from the
    submission (its name, error messages, the checks' reports on its values) is escaped or
    shown in fenced blocks, so a submission cannot put HTML or Markdown into the file."""
    lines = [f"# {manifest.title}: feedback for {_md(result.student)}", "",
             f"Assignment `{manifest.name}`, submission {_md(result.submission or '-')}.", "",
             f"**Total: {_fmt(result.total)} / {manifest.total_points} points** "
             f"(status: {result.status})", "",
             "| # | Exercise | Points | Result |", "|---|---|---|---|"]
    for n, e in enumerate(result.exercises, start=1):
        lines.append(f"| {n} | {e.title} (`{e.id}`) | {_fmt(e.points)} / {e.max_points} "
                     f"| {e.status} |")
    problems = [m for _, m in result.problems] + result.notes
    if problems:
        lines += ["", "## About your submission", ""] + _fenced([f"- {m}" for m in problems])
    for n, e in enumerate(result.exercises, start=1):
        lines += ["", f"## {n}. {e.title}: {_fmt(e.points)} / {e.max_points}", ""]
        lines += _fenced([e.text or "(no result)"])
    if result.cell_errors:
        lines += ["", "## Errors in your cells", ""] + _fenced(
            [f"- {m}" for m in result.cell_errors])
    return "\n".join(lines) + "\n"
