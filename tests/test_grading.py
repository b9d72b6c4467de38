"""End-to-end tests of the instructor tooling: assign, grade a class, survive bad and
hostile submissions, resume after being killed, and a real nbgrader round trip.

The CNN submissions are committed fixtures (tests/fixtures/submissions/cnn-quiz, written by
tests/fixtures/grading/make_fixtures.py); the RNN class and the hostile class
(tests/fixtures/grading/hostile.py) are generated here. The assignments use the quick
exercises; the model-training checks are covered by the benchmark
(FROMSCRATCH_GRADING_BENCHMARK=1). Grading needs bubblewrap (tools/install_sandbox.sh);
without it these tests skip and say so.
"""

from __future__ import annotations

import csv
import filecmp
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from fromscratch import exercises as E
from fromscratch.grading import Options, grade, load_manifest, make_assignment, sandbox
from fromscratch.grading.cli import assign_main, grade_main
from fromscratch.grading.grade import csv_safe, isolation_for
from fromscratch.grading.manifest import ManifestError

ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT / "fixtures" / "submissions" / "cnn-quiz"
_spec = importlib.util.spec_from_file_location(
    "make_fixtures", ROOT / "fixtures" / "grading" / "make_fixtures.py")
make_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_fixtures)
_spec = importlib.util.spec_from_file_location("hostile", ROOT / "fixtures" / "grading" /
                                               "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)

FAST = Options(workers=2, cell_timeout=20, check_timeout=60, total_timeout=150)


def _sandbox_problem():
    try:
        isolation_for(Options())
    except sandbox.SandboxUnavailable as exc:
        return str(exc)
    return None


SANDBOX_PROBLEM = _sandbox_problem()
needs_sandbox = pytest.mark.skipif(SANDBOX_PROBLEM is not None,
                                   reason=f"no grading sandbox here: {SANDBOX_PROBLEM}")


def read_book(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def cnn_graded(tmp_path_factory):
    if SANDBOX_PROBLEM:
        pytest.skip(f"no grading sandbox here: {SANDBOX_PROBLEM}")
    tmp = tmp_path_factory.mktemp("cnn")
    make_fixtures.assignment(tmp / "assignment")
    out = tmp / "grades"
    book = grade(tmp / "assignment", FIXTURES, out, FAST)
    return book, read_book(book.csv_path), out


def test_fixtures_are_up_to_date(tmp_path):
    make_fixtures.build(tmp_path)
    for path in sorted(tmp_path.rglob("*.ipynb")):
        committed = FIXTURES / path.relative_to(tmp_path)
        assert committed.exists() and filecmp.cmp(path, committed, shallow=False), (
            f"{committed} is out of date: run python tests/fixtures/grading/make_fixtures.py")


def test_assign_writes_student_source_and_manifest(tmp_path, capsys):
    assert assign_main(["cnn", "-e", "cnn-max-pool", "cnn-occlusion", "-p",
                        "cnn-max-pool=5", "-n", "hw1", "-o", str(tmp_path)]) == 0
    assert "hw1: 2 exercises, 7 points" in capsys.readouterr().out
    manifest = load_manifest(tmp_path)
    assert [(i.id, i.points) for i in manifest.exercises] == [("cnn-max-pool", 5),
                                                              ("cnn-occlusion", 2)]
    student = nbformat.read(tmp_path / "hw1.ipynb", 4)
    source = nbformat.read(tmp_path / "source" / "hw1" / "hw1.ipynb", 4)
    text = "\n".join(c.source for c in student.cells)
    assert "NotImplementedError" in text and "BEGIN SOLUTION" not in text
    assert "show_solution" not in text and "DigitsCNN(CNNConfig())" in text  # setup included
    assert "BEGIN SOLUTION" in "\n".join(c.source for c in source.cells)
    checks = [c for c in source.cells if c.metadata["nbgrader"]["grade"]]
    assert [c.metadata["nbgrader"]["points"] for c in checks] == [5, 2]
    assert all("strict=True)" in c.source and c.metadata["nbgrader"]["schema_version"] == 3
               for c in checks)
    assert checks[0].source.rstrip().splitlines()[-1].startswith("5  # points")
    # nbgrader reads any line naming a marker as a marker: only the solution cells may
    for cell in source.cells:
        if not cell.metadata["nbgrader"].get("solution"):
            assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source
    # the same input gives the same files
    assign_main(["cnn", "-e", "cnn-max-pool", "cnn-occlusion", "-p", "cnn-max-pool=5",
                 "-n", "hw1", "-o", str(tmp_path / "again")])
    assert filecmp.cmp(tmp_path / "hw1.ipynb", tmp_path / "again" / "hw1.ipynb", shallow=False)


def test_assign_rejects_unknown_exercise(tmp_path, capsys):
    assert assign_main(["cnn", "-e", "rnn-gru-step", "-o", str(tmp_path)]) == 2
    assert "not in chapter(s) ['cnn']" in capsys.readouterr().err


def test_source_version_solutions_pass_and_stub_raises(tmp_path):
    """The nbgrader source notebook runs clean; the check cells raise for a stub."""
    from fromscratch.checks.core import CheckFailed
    from fromscratch.grading.manifest import strict_check

    ex = E.get("cnn-max-pool")
    ns: dict = {}
    exec(ex.solution, ns)
    exec(strict_check(ex.check), ns)
    ns = {}
    exec(ex.stub, ns)
    with pytest.raises(CheckFailed):
        exec(strict_check(ex.check), ns)


def test_class_scores(cnn_graded):
    _, book, _ = cnn_graded
    scores = {s: (book[s]["cnn-max-pool"], book[s]["cnn-occlusion"], book[s]["total"],
                  book[s]["status"]) for s in ("ada", "ben", "cem", "dia", "eve")}
    assert scores == {
        "ada": ("3", "2", "5", "ok"),  # perfect
        "ben": ("3", "0", "3", "ok"),  # partial: forgot to blank
        "cem": ("0", "0", "0", "not-attempted"),  # untouched stubs
        "dia": ("0", "2", "2", "cell-errors"),  # broken max_pool2d (syntax error)
        "eve": ("0", "2", "2", "tampered"),  # edited check, monkeypatched checks and F
    }
    assert "check cell of cnn-max-pool was edited" in book["eve"]["notes"]
    assert "1 code cell(s) of your own were not run" in book["eve"]["notes"]  # F patch: not run


def test_bad_submissions_each_get_a_row(cnn_graded):
    _, book, _ = cnn_graded
    expect = {
        "invalid_json": ("0", "invalid-notebook"),
        "other_chapter": ("0", "wrong-assignment"),
        "missing_cells": ("3", "missing-cells"),
        "syntax_error": ("2", "cell-errors"),
        "exception": ("5", "cell-errors"),
        "infinite_loop": ("2", "timeout"),  # the looping answer is stopped; the other counts
        "huge_output": ("3", "output-limit"),
        "reads_reference": ("0", "read-reference;cell-errors"),  # not visible: it fails
        "deletes_files": ("3", "tampered;cell-errors"),  # ../gradebook.csv: read-only
    }
    got = {s: (book[s]["total"], book[s]["status"]) for s in expect}
    assert got == expect
    assert "not valid JSON" in book["invalid_json"]["notes"]
    assert "rnn-gru-step" in book["other_chapter"]["notes"]
    assert "reference solutions" in book["reads_reference"]["notes"]
    assert "answer cell of cnn-max-pool ran past" in book["infinite_loop"]["notes"]
    assert book["infinite_loop"]["notes"].count("time limit") == 1


def test_feedback_and_instructor_files_intact(cnn_graded):
    book, _, out = cnn_graded
    assert sorted(p.stem for p in (out / "feedback").glob("*.md")) == sorted(
        r.student for r in book.results)
    text = (out / "feedback" / "ben.md").read_text()
    assert "**Total: 3 / 5 points**" in text and "unoccluded" in text
    dia = (out / "feedback" / "dia.md").read_text()  # a syntax error in the answer cell
    assert "your answer cell for this exercise raised SyntaxError" in dia
    assert "(line 1: `def max_pool2d" in dia and ".py, line" not in dia
    assert (FIXTURES / "deletes_files.ipynb").exists()  # graded in a temporary copy
    assert not (FIXTURES / "gradebook.csv").exists() and not (FIXTURES.parent / "gradebook.csv"
                                                               ).exists()
    assert (out / "gradebook.csv").read_text().count("\n") == len(book.results) + 1


@needs_sandbox
def test_reference_zero_policy_and_determinism(tmp_path, cnn_graded):
    """Grading again gives the same gradebook; --reference zero takes those points away."""
    _, first, _ = cnn_graded
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("reads_reference", "ben"):
        src = FIXTURES / f"{name}.ipynb"
        src = src if src.exists() else FIXTURES / name / "cnn-quiz.ipynb"
        (subs / f"{name}.ipynb").write_bytes(src.read_bytes())
    make_fixtures.assignment(tmp_path / "a")
    book = grade(tmp_path / "a", subs, tmp_path / "out",
                 Options(workers=2, cell_timeout=20, check_timeout=60, total_timeout=120,
                         reference="zero"))
    rows = read_book(book.csv_path)
    assert rows["reads_reference"]["total"] == "0"
    assert {k: v for k, v in rows["ben"].items() if k != "submission"} == {
        k: v for k, v in first["ben"].items() if k != "submission"}


@needs_sandbox
def test_rnn_class_from_the_command_line(tmp_path, capsys):
    """Five learners on the RNN exercises, graded with fromscratch-grade."""
    made = make_fixtures.assignment(tmp_path / "a", "rnn", make_fixtures.RNN, "rnn-quiz")
    nb = nbformat.read(made.student_notebook, 4)
    ref = {i.replace("-", "_"): E.get(i).reference for i in make_fixtures.RNN}
    gru, ppl = "rnn_gru_step", "rnn_perplexity"
    class_ = {
        "perfect": make_fixtures.edit(nb, **ref),
        "partial": make_fixtures.edit(nb, **{gru: make_fixtures.mistake("rnn-gru-step"),
                                             ppl: ref[ppl]}),
        "untouched": nb,
        "broken": make_fixtures.edit(nb, **{gru: ref[gru] + "\nraise ValueError('oops')",
                                            ppl: "def measure_perplexity(model, X, Y):\n"
                                            "    return undefined_name"}),
        "tamper": make_fixtures.edit(nb, **{
            gru: "import fromscratch.checks.rnn as c\nc.check_gru_step = lambda f: None\n"
            "def gru_step(*a):\n    return 0", "rnn_perplexity_check": "pass",
            ppl: ref[ppl]}),
    }
    subs = tmp_path / "submissions"
    for student, notebook in class_.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(notebook, subs / student / "rnn-quiz.ipynb")
    start = time.monotonic()
    assert grade_main([str(tmp_path / "a"), str(subs), "-o", str(tmp_path / "out"),
                       "--workers", "2", "--cell-timeout", "30", "-q"]) == 0
    assert time.monotonic() - start < 150
    assert "5 graded" in capsys.readouterr().out
    book = read_book(tmp_path / "out" / "gradebook.csv")
    got = {s: (r["rnn-gru-step"], r["rnn-perplexity"], r["status"]) for s, r in book.items()}
    assert got == {
        "broken": ("3", "0", "cell-errors"),
        "partial": ("0", "2", "ok"),
        "perfect": ("3", "2", "ok"),
        "tamper": ("0", "2", "tampered"),
        "untouched": ("0", "0", "not-attempted"),
    }
    assert list(book) == sorted(book)


@needs_sandbox
def test_manifest_refuses_changed_checks(tmp_path):
    made = make_fixtures.assignment(tmp_path / "a")
    text = made.manifest_path.read_text().replace(made.manifest.exercises[0].check_sha256[0],
                                                  "0" * 64)
    made.manifest_path.write_text(text)
    with pytest.raises(ManifestError, match="changed since the assignment was made"):
        grade(tmp_path / "a", FIXTURES, tmp_path / "out", FAST)


def _grade_perfect_cnn_class(tmp_path, n: int):
    """``n`` perfect submissions of all CNN exercises (two of whose checks train a model)."""
    made = make_assignment(["cnn"], tmp_path / "a", name="cnn")
    nb = nbformat.read(made.student_notebook, 4)
    perfect = make_fixtures.edit(nb, **{ex.id.replace("-", "_"): ex.reference
                                        for ex in E.load("cnn")})
    subs = tmp_path / "submissions"
    subs.mkdir()
    for i in range(n):
        nbformat.write(perfect, subs / f"student{i:02d}.ipynb")
    start = time.monotonic()
    book = grade(tmp_path / "a", subs, tmp_path / "out", Options(workers=2))
    seconds = time.monotonic() - start
    assert {r.status for r in book.results} == {"ok"}, [r.problems for r in book.results]
    assert {r.total for r in book.results} == {sum(ex.points for ex in E.load("cnn"))}
    return book, seconds


@needs_sandbox
def test_a_perfect_submission_of_every_cnn_exercise_is_ok(tmp_path):
    """Checks that train a model inside the sandbox make torch import parts of itself
    lazily; that is not tampering."""
    _grade_perfect_cnn_class(tmp_path, 1)


@pytest.mark.skipif(os.environ.get("FROMSCRATCH_GRADING_BENCHMARK") != "1",
                    reason="benchmark: set FROMSCRATCH_GRADING_BENCHMARK=1")
@needs_sandbox
def test_benchmark_30_submissions_of_the_cnn_chapter(tmp_path):
    """30 perfect submissions of all CNN exercises in under 5 minutes with 2 workers."""
    book, seconds = _grade_perfect_cnn_class(tmp_path, 30)
    print(f"graded 30 submissions in {seconds:.0f} s")
    assert len(book.results) == 30 and seconds < 300


# -- hostile submissions ----------------------------------------------------------------

SECRET = "fromscratch-test-secret-4f1c9d"


def _processes_with(text: str) -> list:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(
                    "utf-8", "replace"):
                found.append(entry.name)
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def hostile_graded(tmp_path_factory):
    """One class: every attack of fixtures/grading/hostile.py beside honest classmates, and
    the entries a submissions folder can hold (odd names, links, FIFOs, hidden files)."""
    if SANDBOX_PROBLEM:
        pytest.skip(f"no grading sandbox here: {SANDBOX_PROBLEM}")
    tmp = tmp_path_factory.mktemp("hostile")
    made = make_fixtures.assignment(tmp / "assignment")
    nb = nbformat.read(made.student_notebook, 4)
    ref = {i.replace("-", "_"): E.get(i).reference for i in make_fixtures.CNN}
    subs, out = tmp / "submissions", tmp / "grades"
    subs.mkdir()
    canary = tmp / "canary.txt"
    canary.write_text("untouched")
    honest = make_fixtures.edit(nb, **ref)
    for name in ("ada", "_under", "a b", "a_b", "=1+2"):
        nbformat.write(honest, subs / f"{name}.ipynb")
    nbformat.write(honest, subs / "UPPER.IPYNB")
    nbformat.write(honest, subs / ".hidden.ipynb")
    (subs / "notes.txt").write_text("not a submission")
    (subs / "broken.ipynb").symlink_to(tmp / "nowhere.ipynb")
    (subs / "leak.ipynb").symlink_to(canary)
    os.mkfifo(subs / "fifo.ipynb")
    (subs / "empty_folder").mkdir()
    fields = {"canary": str(canary), "classmate": str(subs / "ada.ipynb"),
              "exercise_file": str(E.get("cnn-max-pool").path),
              "source_notebook": str(made.source_notebook), "marker_seconds": "4321",
              "gradebook": str(out / "gradebook.csv")}
    checks_file = Path(importlib.util.find_spec("fromscratch.checks.cnn").origin)
    protected = [canary, subs / "ada.ipynb", checks_file, E.get("cnn-max-pool").path,
                 made.source_notebook]
    before = {p: p.read_bytes() for p in protected}
    for name, answer in hostile.ATTACKS.items():
        nbformat.write(make_fixtures.edit(nb, cnn_max_pool=answer.format(**fields),
                                          cnn_occlusion=ref["cnn_occlusion"]),
                       subs / f"{name}.ipynb")
    os.environ["INSTRUCTOR_API_TOKEN"] = SECRET
    try:
        start = time.monotonic()
        book = grade(tmp / "assignment", subs, out, FAST)
        seconds = time.monotonic() - start
    finally:
        os.environ.pop("INSTRUCTOR_API_TOKEN", None)
    time.sleep(6)  # the orphan would rewrite the gradebook after 5 s
    return {"book": book, "rows": read_book(book.csv_path), "out": out, "before": before,
            "seconds": seconds, "tmp": tmp}


def test_hostile_files_outside_the_work_copy_are_untouched(hostile_graded):
    rows = hostile_graded["rows"]
    for path, data in hostile_graded["before"].items():
        assert path.read_bytes() == data, f"{path} was changed by a submission"
    assert rows["write_outside"]["cnn-max-pool"] == "3"  # its answer is right; nothing changed
    assert "tampered" in rows["write_outside"]["status"]
    assert "tried to write" in rows["write_outside"]["notes"]
    assert rows["ada"]["total"] == "5" and rows["ada"]["status"] == "ok"  # the classmate


def test_hostile_grades_cannot_be_forged(hostile_graded):
    rows = hostile_graded["rows"]
    for name in ("fake_grader", "forge_result", "steal_reference", "environ_leak"):
        assert rows[name]["cnn-max-pool"] == "0", (name, rows[name])
        assert rows[name]["cnn-occlusion"] == "2", (name, rows[name])  # untouched
    assert "kernel-died" in rows["forge_result"]["status"]  # it left before its check


def test_hostile_secrets_processes_and_network(hostile_graded):
    out, rows = hostile_graded["out"], hostile_graded["rows"]
    text = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert SECRET not in text  # the grader's environment never reaches the sandbox
    assert "ENV " in (out / "feedback" / "environ_leak.md").read_text()  # the attempt ran
    assert rows["kill_everyone"]["total"] == "2"  # signalling others: 0 for that exercise
    assert "tried to signal" in rows["kill_everyone"]["notes"]
    assert all(rows[s]["status"] == "ok" for s in ("ada", "_under", "a_b"))  # still alive
    assert rows["network"]["total"] == "5" and "NETWORK REACHED" not in text
    assert not _processes_with("4321")  # no process outlives its sandbox
    assert "orphan_forger" not in (out / "gradebook.csv").read_text()
    assert rows["orphans"]["total"] == "5"
    hog = (out / "feedback" / "resource_hog.md").read_text()
    assert "memory: refused" in hog
    forked = int(hog.split("forked ")[1].split(";")[0])
    assert forked < 64
    written = int(hog.split("wrote ")[1].split(" MB")[0])
    assert written <= 200


def test_hostile_folder_entries_each_get_a_row_or_a_reason(hostile_graded):
    book, rows, out = hostile_graded["book"], hostile_graded["rows"], hostile_graded["out"]
    assert dict(book.skipped) == {".hidden.ipynb": "hidden (its name starts with '.')",
                                  "notes.txt": "not a notebook (.ipynb)"}
    for name in ("_under", "UPPER", "a b", "a_b"):
        assert rows[name]["total"] == "5", name
    assert rows["'=1+2"]["total"] == "5"  # a formula cell is neutralised
    for name in ("broken", "leak", "fifo"):
        assert rows[name]["status"] == "invalid-notebook", name
    assert "symbolic link" in rows["leak"]["notes"] and "FIFO" in rows["fifo"]["notes"]
    assert rows["empty_folder"]["status"] == "no-notebook"
    feedback = sorted(p.name for p in (out / "feedback").glob("*.md"))
    assert len(feedback) == len(book.results) == len(set(feedback))
    assert "a_b.md" in feedback and any(f.startswith("a_b-") for f in feedback)
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("fromscratch-grade-*"))


def test_csv_safe():
    assert [csv_safe(v) for v in ("=1+2", "+1", "-x", "@SUM(A1)", "ada", "a=b")] == [
        "'=1+2", "'+1", "'-x", "'@SUM(A1)", "ada", "a=b"]


def test_missing_bwrap_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    monkeypatch.setattr(sys.modules["fromscratch.grading.grade"], "_ISOLATION_CACHE", {})
    make_fixtures.assignment(tmp_path / "a")
    assert grade_main([str(tmp_path / "a"), str(FIXTURES), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bwrap (bubblewrap) was not found" in err and "apt-get install bubblewrap" in err


@needs_sandbox
def test_killed_grader_keeps_finished_rows_and_resumes(tmp_path):
    make_fixtures.assignment(tmp_path / "a")
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("ada", "ben", "cem", "dia"):
        shutil.copy(FIXTURES / name / "cnn-quiz.ipynb", subs / f"{name}.ipynb")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fromscratch.grading.cli", str(tmp_path / "a"), str(subs),
           "-o", str(out), "--workers", "1", "-q"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "gradebook.csv").exists() and \
                (out / "gradebook.csv").read_text().count("\n") >= 2:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = read_book(out / "gradebook.csv")
    assert 1 <= len(first) < 4
    assert all((out / "feedback" / f"{s}.md").exists() for s in first)
    time.sleep(1)
    assert not _processes_with("fromscratch.grading.checker")  # sandboxes died with it
    book = grade(tmp_path / "a", subs, out, Options(workers=2))  # the command's settings
    assert book.resumed == len(first)
    rows = read_book(book.csv_path)
    assert {s: rows[s]["total"] for s in rows} == {"ada": "5", "ben": "3", "cem": "0",
                                                   "dia": "2"}


# -- nbgrader round trip ----------------------------------------------------------------

def _nbgrader(course: Path, *args) -> subprocess.CompletedProcess:
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([str(bindir / "nbgrader"), *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.mark.skipif(shutil.which("nbgrader", path=str(Path(sys.executable).parent)) is None,
                    reason="nbgrader is not installed (pip install -e '.[dev]')")
def test_nbgrader_round_trip_of_two_chapters(tmp_path):
    """nbgrader itself: generate_assignment, autograde and export on the source version of
    a CNN and an RNN assignment; solved, empty and partly wrong submissions."""
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.ExecutePreprocessor.timeout = 300\n")
    quizzes = {"cnn-quiz": ("cnn", make_fixtures.CNN), "rnn-quiz": ("rnn", make_fixtures.RNN)}
    for name, (chapter, ids) in quizzes.items():
        made = make_assignment([chapter], tmp_path / name, exercises=ids, name=name)
        shutil.copytree(made.source_notebook.parent, course / "source" / name)
        _nbgrader(course, "generate_assignment", name, "--force")
        release = nbformat.read(course / "release" / name / f"{name}.ipynb", 4)
        text = "\n".join(c.source for c in release.cells)
        assert "BEGIN SOLUTION" not in text and "NotImplementedError" in text
        first, second = (i.replace("-", "_") for i in ids)
        ref = {i.replace("-", "_"): E.get(i).reference for i in ids}
        students = {
            "solved": make_fixtures.edit(release, **ref),
            "empty": release,
            "partly": make_fixtures.edit(release, **{first: make_fixtures.mistake(ids[0]),
                                                     second: ref[second]}),
        }
        for student, nb in students.items():
            folder = course / "submitted" / student / name
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{name}.ipynb")
        _nbgrader(course, "autograde", name, "--create", "--force")
    _nbgrader(course, "export", "--to", str(tmp_path / "grades.csv"))
    with open(tmp_path / "grades.csv", newline="") as fh:
        scores = {(r["assignment"], r["student_id"]): float(r["score"])
                  for r in csv.DictReader(fh)}
    points = {i: E.get(i).points for _, ids in quizzes.values() for i in ids}
    cnn_total = sum(points[i] for i in make_fixtures.CNN)
    rnn_total = sum(points[i] for i in make_fixtures.RNN)
    assert scores == {
        ("cnn-quiz", "solved"): cnn_total, ("cnn-quiz", "empty"): 0,
        ("cnn-quiz", "partly"): points["cnn-occlusion"],
        ("rnn-quiz", "solved"): rnn_total, ("rnn-quiz", "empty"): 0,
        ("rnn-quiz", "partly"): points["rnn-perplexity"],
    }


def test_gradebook_states_a_refused_answer():
    """The grader applies the checks' rule (an answer that runs an implementation the course
    ships, or the check's own code, is refused) and says so in the gradebook's notes."""
    from fromscratch import exercises as ex_mod
    from fromscratch.grading.grade import ExerciseResult, StudentResult, _score_exercise

    ex = ex_mod.get("cnn-max-pool")
    check = ex_mod.run(ex, "from fromscratch.checks.cnn import _ref_max_pool as max_pool2d\n")
    assert check.status == "failed" and check.refused
    result = StudentResult("ada", "ada.ipynb")
    exercise = ExerciseResult(ex.id, ex.title, 0, ex.points, "not run", "")
    _score_exercise(result, exercise, {"outcome": "ok", "result": check.to_dict()}, Options())
    assert exercise.points == 0 and exercise.status == "failed"
    assert any("refused" in n and "_ref_max_pool" in n for n in result.notes), result.notes
