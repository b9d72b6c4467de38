"""End-to-end tests of the instructor tooling: assign, grade a class, survive bad submissions.

The CNN submissions are committed fixtures (tests/fixtures/submissions/cnn-quiz, written by
tests/fixtures/grading/make_fixtures.py); the RNN class is generated here. The assignments
use the quick exercises; the model-training checks are covered by the benchmark
(FROMSCRATCH_GRADING_BENCHMARK=1).
"""

from __future__ import annotations

import csv
import filecmp
import importlib.util
import os
import time
from pathlib import Path

import nbformat
import pytest

from fromscratch import exercises as E
from fromscratch.grading import Options, grade, load_manifest, make_assignment
from fromscratch.grading.cli import assign_main, grade_main
from fromscratch.grading.manifest import ManifestError

ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT / "fixtures" / "submissions" / "cnn-quiz"
_spec = importlib.util.spec_from_file_location(
    "make_fixtures", ROOT / "fixtures" / "grading" / "make_fixtures.py")
make_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_fixtures)

FAST = Options(workers=2, cell_timeout=20, total_timeout=150)


def read_book(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def cnn_graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cnn")
    make_fixtures.assignment(tmp / "assignment")
    out = tmp / "grades"
    book = grade(tmp / "assignment", FIXTURES, out, Options(workers=2, cell_timeout=20,
                                                            total_timeout=150))
    return book, read_book(book.csv_path), out


def test_fixtures_are_up_to_date(tmp_path):
    make_fixtures.build(tmp_path)
    for path in sorted(tmp_path.rglob("*.ipynb")):
        committed = FIXTURES / path.relative_to(tmp_path)
        assert committed.exists() and filecmp.cmp(path, committed, shallow=False), (
            f"{committed} is out of date: run python tests/fixtures/grading/make_fixtures.py")


def test_assign_writes_student_source_and_manifest(tmp_path, capsys):
    assert assign_main(["cnn", "-e", "cnn-max-pool", "cnn-shift-experiment", "-p",
                        "cnn-max-pool=5", "-n", "hw1", "-o", str(tmp_path)]) == 0
    assert "hw1: 2 exercises, 7 points" in capsys.readouterr().out
    manifest = load_manifest(tmp_path)
    assert [(i.id, i.points) for i in manifest.exercises] == [("cnn-max-pool", 5),
                                                              ("cnn-shift-experiment", 2)]
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
    # the same input gives the same files
    assign_main(["cnn", "-e", "cnn-max-pool", "cnn-shift-experiment", "-p", "cnn-max-pool=5",
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
    scores = {s: (book[s]["cnn-max-pool"], book[s]["cnn-shift-experiment"], book[s]["total"],
                  book[s]["status"]) for s in ("ada", "ben", "cem", "dia", "eve")}
    assert scores == {
        "ada": ("3", "2", "5", "ok"),  # perfect
        "ben": ("3", "0", "3", "ok"),  # partial: forgot to shift
        "cem": ("0", "0", "0", "not-attempted"),  # untouched stubs
        "dia": ("0", "2", "2", "cell-errors"),  # broken max_pool2d (syntax error)
        "eve": ("0", "2", "2", "tampered"),  # edited check, monkeypatched checks and F
    }
    assert "check cell of cnn-max-pool was edited" in book["eve"]["notes"]
    assert "torch.nn.functional.max_pool2d" in book["eve"]["notes"]


def test_bad_submissions_each_get_a_row(cnn_graded):
    _, book, _ = cnn_graded
    expect = {
        "invalid_json": ("0", "invalid-notebook"),
        "other_chapter": ("0", "wrong-assignment"),
        "missing_cells": ("3", "missing-cells"),
        "syntax_error": ("2", "cell-errors"),
        "exception": ("5", "cell-errors"),
        "infinite_loop": ("2", "timeout"),  # the looping cell is left out
        "huge_output": ("3", "output-limit"),
        "reads_reference": ("5", "read-reference"),
        "deletes_files": ("3", "ok"),
    }
    got = {s: (book[s]["total"], book[s]["status"]) for s in expect}
    assert got == expect
    assert "not valid JSON" in book["invalid_json"]["notes"]
    assert "rnn-gru-step" in book["other_chapter"]["notes"]
    assert "ex1_max_pool.py" in book["reads_reference"]["notes"]
    assert "ex3_shift_experiment.py" in book["reads_reference"]["notes"]


def test_feedback_and_instructor_files_intact(cnn_graded):
    book, _, out = cnn_graded
    assert sorted(p.stem for p in (out / "feedback").glob("*.md")) == sorted(
        r.student for r in book.results)
    text = (out / "feedback" / "ben.md").read_text()
    assert "**Total: 3 / 5 points**" in text and "unshifted" in text
    dia = (out / "feedback" / "dia.md").read_text()  # a syntax error in the answer cell
    assert "your answer cell for this exercise raised SyntaxError" in dia
    assert "(line 1: `def max_pool2d" in dia and ".py, line" not in dia
    assert (FIXTURES / "deletes_files.ipynb").exists()  # graded in a temporary copy
    assert not (FIXTURES / "gradebook.csv").exists() and not (FIXTURES.parent / "gradebook.csv"
                                                               ).exists()
    assert (out / "gradebook.csv").read_text().count("\n") == len(book.results) + 1


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
                 Options(workers=2, cell_timeout=20, total_timeout=120, reference="zero"))
    rows = read_book(book.csv_path)
    assert rows["reads_reference"]["total"] == "0"
    assert {k: v for k, v in rows["ben"].items() if k != "submission"} == {
        k: v for k, v in first["ben"].items() if k != "submission"}


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
    assert time.monotonic() - start < 120
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


def test_manifest_refuses_changed_checks(tmp_path):
    made = make_fixtures.assignment(tmp_path / "a")
    text = made.manifest_path.read_text().replace(made.manifest.exercises[0].check_sha256[0],
                                                  "0" * 64)
    made.manifest_path.write_text(text)
    with pytest.raises(ManifestError, match="changed since the assignment was made"):
        grade(tmp_path / "a", FIXTURES, tmp_path / "out", FAST)


@pytest.mark.skipif(os.environ.get("FROMSCRATCH_GRADING_BENCHMARK") != "1",
                    reason="benchmark: set FROMSCRATCH_GRADING_BENCHMARK=1")
def test_benchmark_30_submissions_of_the_cnn_chapter(tmp_path):
    """30 perfect submissions of all CNN exercises (two train a model) in under 5 minutes."""
    made = make_assignment(["cnn"], tmp_path / "a", name="cnn")
    nb = nbformat.read(made.student_notebook, 4)
    perfect = make_fixtures.edit(nb, **{ex.id.replace("-", "_"): ex.reference
                                        for ex in E.load("cnn")})
    subs = tmp_path / "submissions"
    subs.mkdir()
    for n in range(30):
        nbformat.write(perfect, subs / f"student{n:02d}.ipynb")
    start = time.monotonic()
    book = grade(tmp_path / "a", subs, tmp_path / "out", Options(workers=2))
    seconds = time.monotonic() - start
    print(f"graded 30 submissions in {seconds:.0f} s")
    assert len(book.results) == 30 and seconds < 300
