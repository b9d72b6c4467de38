"""The check machinery: its messages name the input, expected and received, and a hint."""

import pytest
import torch

from fromscratch.checks.core import Case, CheckFailed, check_function, compare


def _ref(x):
    return x * 2


def test_compare_describes_shape_and_value_differences():
    assert compare(torch.ones(2), torch.ones(2)) is None
    assert "expected shape (2, 3), received shape (3, 2)" in compare(torch.ones(2, 3), torch.ones(3, 2))
    msg = compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    assert "index (1,)" in msg and "expected 2" in msg and "received 2.5" in msg
    assert "expected a tensor" in compare(torch.ones(1), 3)
    assert compare(0.5, 0.5000001) is None and "expected 0.5" in compare(0.5, 0.6)


def test_check_function_reports_case_input_expected_received_and_mistake():
    cases = [Case((torch.tensor([1.0, 2.0]),), label="small")]
    ok = check_function("demo", lambda x: x * 2, _ref, cases)
    assert ok.passed and "all 1 cases" in ok.text
    wrong = check_function("demo", lambda x: x + 2, _ref, cases,
                           mistakes=[(lambda x: x + 2, "you added instead of multiplying")])
    assert wrong.status == "failed"
    for part in ("input: small", "expected:", "received:", "likely mistake: you added"):
        assert part in wrong.text
    unknown = check_function("demo", lambda x: x * 3, _ref, cases, hint="double it")
    assert "hint: double it" in unknown.text


def test_exceptions_are_reported_without_traceback_and_stubs_as_todo():
    cases = [Case((torch.ones(2),))]

    def broken(x):
        return x @ torch.ones(3)

    r = check_function("demo", broken, _ref, cases)
    assert r.status == "failed" and "raised RuntimeError" in r.text and "Traceback" not in r.text

    def stub(x):
        raise NotImplementedError()

    assert check_function("demo", stub, _ref, cases).status == "not attempted"


def test_learner_code_cannot_modify_the_reference_inputs():
    x = torch.ones(3)

    def mutating(t):
        t.mul_(100)
        return t

    r = check_function("demo", mutating, _ref, [Case((x,))])
    assert r.status == "failed" and torch.equal(x, torch.ones(3))


def test_strict_mode_raises_with_the_feedback(monkeypatch):
    cases = [Case((torch.ones(2),))]
    with pytest.raises(CheckFailed, match="received"):
        check_function("demo", lambda x: x, _ref, cases, strict=True)
    monkeypatch.setenv("FROMSCRATCH_STRICT_CHECKS", "1")
    with pytest.raises(CheckFailed):
        check_function("demo", lambda x: x, _ref, cases)
    assert check_function("demo", _ref, _ref, cases).passed
