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
from fromscratch.grading import submissions as submissions_mod
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
JOURNAL_NAME = ".journal.jsonl"


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
    assert "a_b.md" in feedback and any(f.startswith("a_b~") for f in feedback)
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

NBGRADER_PATCH = """import fromscratch.checks.cnn
fromscratch.checks.cnn.check_max_pool2d = lambda *args, **kwargs: None
def max_pool2d(x, kernel_size, stride=None):
    return x
"""


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
    a CNN and an RNN assignment; solved, empty and partly wrong submissions. Under nbgrader
    an answer that replaces its check function scores full marks; fromscratch-grade, run
    on the same submitted/ folder, gives it 0 for that exercise."""
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
            "patched": make_fixtures.edit(release, **{first: NBGRADER_PATCH, second: ref[second]})
            if chapter == "cnn" else release,
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
        ("cnn-quiz", "patched"): cnn_total,  # nbgrader: the patch scores full marks
        ("rnn-quiz", "solved"): rnn_total, ("rnn-quiz", "empty"): 0,
        ("rnn-quiz", "partly"): points["rnn-perplexity"], ("rnn-quiz", "patched"): 0,
    }
    if SANDBOX_PROBLEM is None:  # the same submitted/ folder, graded by fromscratch-grade
        book = grade(tmp_path / "cnn-quiz", course / "submitted", tmp_path / "fs", FAST)
        rows = read_book(book.csv_path)
        assert {s: (r["cnn-max-pool"], r["total"]) for s, r in rows.items()} == {
            "solved": (str(points["cnn-max-pool"]), str(cnn_total)), "empty": ("0", "0"),
            "partly": ("0", str(points["cnn-occlusion"])),
            "patched": ("0", str(points["cnn-occlusion"]))}  # the patch earns nothing here


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


# -- one entry never stops the class; one student never costs another -------------------

DEEP_WORK_FOLDER = """
import os
fd = os.open('.', os.O_RDONLY)
for _ in range(3000):  # deeper than any recursion or path length allows
    os.mkdir('d', dir_fd=fd)
    inner = os.open('d', os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = inner
"""


def _mkdirs_deep(folder: Path, levels: int) -> None:
    """A folder ``levels`` deep (more than a path may hold), made relative to its parent."""
    fd = os.open(folder, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)


def test_feedback_names_are_distinct_by_construction():
    """A student who picks the name another's feedback file would get cannot take it."""
    names = submissions_mod.feedback_names(["a b", "a_b"])
    chosen = names["a b"]  # the name "a b"'s feedback file gets: safe text, "~", a hash
    assert "~" in chosen and chosen.startswith("a_b~")
    both = submissions_mod.feedback_names(["a b", "a_b", chosen, chosen.upper(), "x" * 300])
    assert len(set(both.values())) == 5 and len({n.lower() for n in both.values()}) == 5
    assert both[chosen] != names["a b"] and both["a b"] == names["a b"]
    assert all(len(n) <= 100 for n in both.values())


def test_names_are_shown_safely():
    assert submissions_mod.shown(os.fsdecode(b"m\xfcller.ipynb")) == "m\\xfcller.ipynb"
    assert submissions_mod.shown("m\u00fcller") == "m\u00fcller"  # real UTF-8 stays
    assert submissions_mod.shown("x\x1b[2J\ny") == "x\\x1b[2J\\ny"
    assert submissions_mod.shown(os.fsdecode(b"\xfc")) != submissions_mod.shown(
        os.fsdecode(b"\xe4"))  # different bytes, different names


def test_feedback_escapes_what_a_submission_wrote():
    from fromscratch.grading.grade import ExerciseResult, StudentResult, feedback

    result = StudentResult("<b>a</b>", "<img src=x onerror=alert(1)>.ipynb")
    result.exercises = [ExerciseResult("cnn-max-pool", "Max pooling", 0, 3, "failed",
                                       "received: ```\n<script>alert(1)</script>\n```")]
    result.cell_errors = ["answer to cnn-max-pool: ValueError: [x](javascript:alert(1)) <i>"]
    result.problems = [("tampered", "cnn-max-pool: tried to write /home/<b>x</b>")]

    class M:
        title, name, total_points = "Quiz", "cnn-quiz", 3

    text = feedback(M, result)
    outside = []  # the lines outside fenced blocks
    fence = None
    for line in text.splitlines():
        if fence is None and line.startswith("```"):
            fence = line.removesuffix("text")
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            outside.append(line)
    assert fence is None  # every block is closed by its own fence
    assert not any("<" in line for line in outside), outside
    assert "&lt;b&gt;a&lt;/b&gt;" in text and "&lt;img src=x" in text
    assert "<script>alert(1)</script>" in text  # verbatim, inside a longer fence
    assert "````text" in text


def test_slow_submissions_are_named_not_graded_differently():
    from fromscratch.grading.grade import StudentResult, slow_submissions

    results = [StudentResult(f"s{i}", "", seconds=3.0) for i in range(9)]
    results.append(StudentResult("dawdler", "", seconds=590.0))
    slow = slow_submissions(results)
    assert [name for name, _ in slow] == ["dawdler"] and "590 s" in slow[0][1]
    assert slow_submissions(results[:9]) == []


@needs_sandbox
def test_odd_entries_never_stop_the_class_and_a_rerun_resumes(tmp_path, capsys, request):
    """Each of these once ended the run for everyone; now each gets a row or a skip line
    with its name shown safely, the run exits 0, and a rerun into the same folder works."""
    made = make_fixtures.assignment(tmp_path / "a")
    nb = nbformat.read(made.student_notebook, 4)
    ref = {i.replace("-", "_"): E.get(i).reference for i in make_fixtures.CNN}
    honest = make_fixtures.edit(nb, **ref)
    subs = tmp_path / "subs"
    subs.mkdir()
    latin1 = os.fsdecode(b"m\xfcller.ipynb")  # from an unzipped archive: not UTF-8
    long_name = "x" * 248 + ".ipynb"  # its feedback file's temporary name was too long
    escape = "esc\x1b[2J\x1b]0;pwned\x07.ipynb"  # terminal escape codes
    for name in (latin1, long_name, escape, "a b.ipynb"):
        nbformat.write(honest, subs / name)
    taken = submissions_mod.feedback_names(["a b"])["a b"]
    nbformat.write(honest, subs / f"{taken}.ipynb")  # tries to take a b's feedback file
    (subs / os.fsdecode(b"notes\xe4.txt")).write_text("not a notebook")
    (subs / "deep").mkdir()
    request.addfinalizer(lambda: subprocess.run(["rm", "-rf", str(subs / "deep")], check=True))
    _mkdirs_deep(subs / "deep", 1000)  # removed without recursion: pytest's cleanup cannot
    (subs / "nested").mkdir()  # nbgrader's submitted/<student>/<assignment>/ layout
    (subs / "nested" / "cnn-quiz").mkdir()
    nbformat.write(honest, subs / "nested" / "cnn-quiz" / "cnn-quiz.ipynb")
    (subs / "deep_json.ipynb").write_text("[" * 100000 + "]" * 100000)
    stringy = make_fixtures.edit(nb, **ref)
    stringy.cells[0].metadata["nbgrader"] = "not a dictionary"
    stringy.metadata["fromscratch"] = "nor this"
    nbformat.write(stringy, subs / "string_metadata.ipynb")
    nbformat.write(make_fixtures.edit(nb, cnn_max_pool=ref["cnn_max_pool"] + DEEP_WORK_FOLDER,
                                      cnn_occlusion=ref["cnn_occlusion"]),
                   subs / "deep_work_folder.ipynb")
    out = tmp_path / "out"
    args = [str(tmp_path / "a"), str(subs), "-o", str(out), "--workers", "2",
            "--cell-timeout", "30", "--check-timeout", "60"]
    assert grade_main(args) == 0
    printed = capsys.readouterr()
    assert "\x1b" not in printed.out + printed.err  # the escape codes never reach a terminal
    rows = read_book(out / "gradebook.csv")
    for student in ("m\\xfcller", "x" * 248, "esc\\x1b[2J\\x1b]0;pwned\\x07", "a b", taken,
                    "nested", "string_metadata"):
        assert rows[student]["total"] == "5" and rows[student]["status"] == "ok", student
    assert rows["deep"]["status"] == "no-notebook" and "levels deep" in rows["deep"]["notes"]
    assert rows["deep_json"]["status"] == "invalid-notebook"
    assert "nested too deeply" in rows["deep_json"]["notes"]
    assert rows["deep_work_folder"]["total"] == "5", rows["deep_work_folder"]
    assert "grader-error" not in {r["status"] for r in rows.values()}
    assert (out / "skipped.txt").read_text(encoding="utf-8") == (
        "notes\\xe4.txt\tnot a notebook (.ipynb)\n")
    feedback = sorted(p.name for p in (out / "feedback").iterdir())
    assert len(feedback) == len(rows) and all(len(n) < 120 for n in feedback)
    assert not any(n.startswith(".") for n in feedback)  # no temporary file left behind
    assert "feedback for a b\n" in (out / "feedback" / f"{taken}.md").read_text()  # still a b's
    own = submissions_mod.feedback_names(list(rows))[taken]
    assert own != taken and "submission a\\_b\\~" in (out / "feedback" / f"{own}.md").read_text()
    # the same command again: every row resumed, nothing graded, the same gradebook
    before = (out / "gradebook.csv").read_bytes()
    assert grade_main(args) == 0
    assert f"{len(rows)} graded" in capsys.readouterr().out
    assert (out / "gradebook.csv").read_bytes() == before
    assert grade(tmp_path / "a", subs, out, Options(workers=2, cell_timeout=30,
                                                    check_timeout=60)).resumed == len(rows)


@needs_sandbox
def test_ctrl_c_stops_within_seconds_and_keeps_finished_rows(tmp_path):
    """A real SIGINT: the grader ends its sandboxes at once instead of grading the whole
    queue, keeps every finished row, and the same command resumes."""
    make_fixtures.assignment(tmp_path / "a")
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("ada", "ben"):
        shutil.copy(FIXTURES / name / "cnn-quiz.ipynb", subs / f"{name}.ipynb")
    for name in ("loop1", "loop2", "loop3"):  # each would cost its 30 s cell limit
        shutil.copy(FIXTURES / "infinite_loop.ipynb", subs / f"{name}.ipynb")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fromscratch.grading.cli", str(tmp_path / "a"), str(subs),
           "-o", str(out), "--workers", "1", "--cell-timeout", "30", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "gradebook.csv").exists() and \
                (out / "gradebook.csv").read_text().count("\n") >= 3:
            break
        time.sleep(0.2)
    time.sleep(3)  # loop1 is running now
    assert _processes_with("fromscratch.grading.checker")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    stopped = time.monotonic() - sent
    assert stopped < 10, f"took {stopped:.1f} s to stop"
    assert proc.returncode == 130 and b"interrupted" in err, err[-2000:]
    time.sleep(1)
    assert not _processes_with("fromscratch.grading.checker")  # its sandboxes ended too
    rows = read_book(out / "gradebook.csv")
    assert set(rows) == {"ada", "ben"}  # finished rows kept; the interrupted one is not a row
    assert (out / JOURNAL_NAME).read_text().count("\n") == 2
    for name in ("loop1", "loop2", "loop3"):
        (subs / f"{name}.ipynb").unlink()
    book = grade(tmp_path / "a", subs, out, Options(workers=1, cell_timeout=30))
    assert book.resumed == 2


HOG = """import os, time
for _ in range(60):  # busy processes, each in its own session (its own scheduling group)
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
"""


@needs_sandbox
def test_an_honest_twin_beside_a_cpu_hog_scores_what_it_scores_alone(tmp_path):
    made = make_fixtures.assignment(tmp_path / "a")
    nb = nbformat.read(made.student_notebook, 4)
    ref = {i.replace("-", "_"): E.get(i).reference for i in make_fixtures.CNN}
    alone, beside = tmp_path / "alone", tmp_path / "beside"
    alone.mkdir()
    beside.mkdir()
    nbformat.write(make_fixtures.edit(nb, **ref), alone / "twin.ipynb")
    nbformat.write(make_fixtures.edit(nb, **ref), beside / "twin.ipynb")
    nbformat.write(make_fixtures.edit(nb, cnn_max_pool=ref["cnn_max_pool"] + "\n" + HOG,
                                      cnn_occlusion=ref["cnn_occlusion"] + "\n" + HOG),
                   beside / "hog.ipynb")
    # limits the twin meets with room to spare alone, and never would at a sixtieth of a CPU
    options = Options(workers=2, cell_timeout=10, check_timeout=10, total_timeout=60)
    first = read_book(grade(tmp_path / "a", alone, tmp_path / "out1", options).csv_path)
    book = grade(tmp_path / "a", beside, tmp_path / "out2", options)
    rows = read_book(book.csv_path)
    assert {k: v for k, v in rows["twin"].items() if k != "submission"} == {
        k: v for k, v in first["twin"].items() if k != "submission"}
    assert rows["twin"]["total"] == "5" and rows["twin"]["status"] == "ok"
    assert "timeout" in rows["hog"]["status"]  # the hog is charged for its own CPU time
    assert not _processes_with("fromscratch.grading.checker")


MEMORY_HOG = """import subprocess, sys
hold = "block = b'x' * (1 << 30); import time; time.sleep(4)"  # 1 GB, every page written
procs = [subprocess.Popen([sys.executable, '-c', hold]) for _ in range(5)]
alive = sum(p.wait() == 0 for p in procs)
import glob
left = glob.glob('/dev/shm/*')
try:
    open('/dev/x', 'w')
    dev = 'writable'
except OSError:
    dev = 'read-only'
shm = 0
try:
    with open('/dev/shm/token', 'wb') as fh:
        for _ in range(1024):
            fh.write(b'x' * (1 << 20))
            shm += 1
except OSError:
    pass
raise RuntimeError(f'REPORT alive={alive} dev={dev} shm={shm} left={left}')
"""


@needs_sandbox
def test_memory_is_bounded_for_the_whole_sandbox(tmp_path):
    """Five processes of 1 GB do not pass a 2500 MB limit together (where a cgroup can be
    made); /dev is read-only; /dev/shm is small and emptied between exercises."""
    isolation = isolation_for(Options())
    made = make_fixtures.assignment(tmp_path / "a")
    nb = nbformat.read(made.student_notebook, 4)
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(make_fixtures.edit(nb, cnn_max_pool=MEMORY_HOG, cnn_occlusion=MEMORY_HOG),
                   subs / "hog.ipynb")
    book = grade(tmp_path / "a", subs, tmp_path / "out",
                 Options(workers=1, cell_timeout=60, check_timeout=60, memory_mb=2500))
    text = (tmp_path / "out" / "feedback" / "hog.md").read_text()
    reports = [line.split("REPORT ")[1] for line in text.splitlines() if "REPORT " in line]
    assert len(reports) >= 2, text  # one per exercise
    for report in reports:
        assert "dev=read-only" in report and "left=[]" in report, report
        shm = int(report.split("shm=")[1].split()[0])
        assert 0 < shm <= 64, report
        if isolation.cgroups:
            alive = int(report.split("alive=")[1].split()[0])
            assert alive * 1024 < 2500, report
    if isolation.cgroups:
        assert "reached its memory limit" in book.results[0].notes[-1] or any(
            "reached its memory limit" in n for n in book.results[0].notes)
