"""Every exercise: the reference passes, the untouched stub fails (as "not attempted"),
and every typical mistake fails with the feedback it is meant to get."""

import pytest

from fromscratch import exercises
from fromscratch.checks.core import CheckFailed

ALL = exercises.load()
MISTAKES = [(ex, m) for ex in ALL for m in ex.mistakes]


def test_every_chapter_has_at_least_three_exercises_of_varied_kinds():
    by_chapter = {}
    for ex in ALL:
        by_chapter.setdefault(ex.chapter, []).append(ex)
    assert set(by_chapter) >= {"cnn", "rnn"}
    for chapter, exs in by_chapter.items():
        assert len(exs) >= 3, chapter
        assert {e.kind for e in exs} == {"implement", "model", "experiment"}, chapter
    ids = [e.id for e in ALL]
    assert len(ids) == len(set(ids)), "exercise ids must be unique"


@pytest.mark.parametrize("ex", ALL, ids=lambda e: e.id)
def test_reference_solution_passes(ex, setups):
    result = exercises.run(ex, ex.reference, namespace=setups(ex))
    assert result.passed, result.text


@pytest.mark.parametrize("ex", ALL, ids=lambda e: e.id)
def test_untouched_stub_fails_as_not_attempted(ex, setups):
    result = exercises.run(ex, ex.stub, namespace=setups(ex))
    assert result.status == "not attempted", result.text
    assert "NotImplementedError" in result.text
    with pytest.raises(CheckFailed):
        exercises.run(ex, ex.stub, strict=True, namespace=setups(ex))


@pytest.mark.parametrize("ex,mistake", MISTAKES, ids=[f"{e.id}:{m.name}" for e, m in MISTAKES])
def test_typical_mistake_fails_with_intended_feedback(ex, mistake, setups):
    result = exercises.run(ex, mistake.code, namespace=setups(ex))
    assert result.status == "failed", result.text
    assert mistake.expect in result.text, result.text
    assert "Traceback" not in result.text


def test_stub_is_the_solution_with_regions_replaced():
    ex = exercises.get("cnn-max-pool")
    assert "### BEGIN SOLUTION" not in ex.stub and "raise NotImplementedError()" in ex.stub
    assert "amax" in ex.reference and "amax" not in ex.stub
    assert ex.stub.splitlines()[0] == ex.solution.splitlines()[0]


def test_notebook_cells_carry_nbgrader_metadata():
    ex = exercises.get("rnn-gru-step")
    prompt, answer, check = exercises.notebook_cells(ex, 1)
    assert prompt["metadata"]["nbgrader"]["locked"] is True
    assert answer["metadata"]["nbgrader"] == {
        "grade": False, "solution": True, "locked": False, "task": False,
        "grade_id": "rnn-gru-step", "schema_version": 3}
    meta = check["metadata"]["nbgrader"]
    assert meta["grade"] is True and meta["locked"] is True and meta["points"] == ex.points
    assert answer["source"] == ex.stub
    solved = exercises.notebook_cells(ex, 1, solution=True)[1]
    assert "### BEGIN SOLUTION" in solved["source"]


def test_show_solution_prints_reference(capsys):
    exercises.show_solution("cnn-occlusion")
    out = capsys.readouterr().out
    assert "X_blank[..., :4, :] = 0" in out and "BEGIN SOLUTION" not in out


def test_malformed_exercise_files_get_clear_errors(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    bad = folder / "bad.py"
    bad.write_text("print('no header')\n")
    with pytest.raises(exercises.ExerciseError, match="header"):
        exercises.parse(bad)
    bad.write_text("# ---\n# id: x\n# title: t\n# kind: implement\n# points: 1\n# ---\n"
                   "# %% [markdown]\n# hi\n# %% [solution]\ndef f():\n    return 1\n"
                   "# %% [check]\nf()\n")
    with pytest.raises(exercises.ExerciseError, match="BEGIN SOLUTION"):
        exercises.parse(bad)
    with pytest.raises(exercises.ExerciseError, match="without an END"):
        exercises.strip_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(KeyError, match="no exercise"):
        exercises.get("does-not-exist")
