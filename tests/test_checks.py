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


def test_forbidden_blocks_every_alias_and_leaves_nothing_behind():
    from fromscratch.checks import core
    from fromscratch.models import cnn

    alias = cnn.max_pool2d
    x = torch.randn(1, 1, 4, 4)
    targets = (cnn.max_pool2d, (torch.nn.functional, "max_pool2d"))
    with pytest.raises(core.UsedForbidden, match="fromscratch.models.cnn.max_pool2d"):
        with core.forbidden(*targets):
            alias(x, 2)
    with pytest.raises(core.UsedForbidden, match="max_pool2d"):
        with core.forbidden(*targets):
            torch.nn.functional.max_pool2d(x, 2)
    assert torch.equal(alias(x, 2), torch.nn.functional.max_pool2d(x, 2))
    import sys
    assert sys.getprofile() is None


def test_check_function_refuses_a_forbidden_implementation_by_name():
    from fromscratch.models import cnn

    cases = [Case((torch.randn(1, 1, 4, 4), 2))]
    ref = lambda x, k: torch.nn.functional.max_pool2d(x, k)  # noqa: E731
    r = check_function("demo", lambda x, k: cnn.max_pool2d(x, k), ref, cases, forbid=[cnn.max_pool2d])
    assert r.status == "failed" and "fromscratch.models.cnn.max_pool2d" in r.text
    assert check_function("demo", ref, ref, cases, forbid=[cnn.max_pool2d]).passed


def test_measurement_that_changes_between_calls_names_training_mode():
    from fromscratch.checks.core import check_measurement

    model = torch.nn.Dropout(0.5)
    x = torch.ones(1000)

    def forgot_eval(m, x):
        return m(x).mean().item()

    def correct(m, x):
        m.eval()
        return m(x).mean().item()

    r = check_measurement("demo", forgot_eval, "measure", (model, x), 1.0, model=model)
    assert r.status == "failed" and "model.eval()" in r.text and "random" in r.text
    assert check_measurement("demo", correct, "measure", (model, x), 1.0, model=model).passed
    wrong = check_measurement("demo", lambda m, x: 100.0, "measure", (model, x), 1.0,
                              known={"a percentage": 100.0})
    assert "likely mistake: a percentage" in wrong.text and "far too high" in wrong.text
    assert "expected" not in wrong.text  # the right value is never printed


def test_trained_model_pattern_checks_shape_requirements_and_bar():
    from fromscratch.checks.core import check_trained_model

    def run(factory, bar=0.5):
        return check_trained_model(
            "demo", factory, "make", (), probe=torch.zeros(2, 3), probe_text="zeros (2, 3)",
            out_shape=(2, 4), shape_hint="end with 4 outputs", train=lambda m: 0.7, bar=bar,
            score_text=lambda s: f"score {s:.2f}",
            requirements=[lambda m: ["must be linear"] if not isinstance(m, torch.nn.Linear) else None])

    assert run(lambda: torch.nn.Linear(3, 4)).passed
    assert "expected: an output of shape (2, 4)" in run(lambda: torch.nn.Linear(3, 5)).text
    assert "must be linear" in run(lambda: torch.nn.Sequential(torch.nn.Linear(3, 4))).text
    assert "the bar is score 0.90" in run(lambda: torch.nn.Linear(3, 4), bar=0.9).text
    assert run(lambda: 3).status == "failed"


def test_attention_exercise_refuses_the_courses_and_pytorchs_attention():
    import torch.nn as nn

    from fromscratch.checks.transformer import check_causal_attention
    from fromscratch.models import transformer as tr

    def via_course(x, w_in, b_in, w_out, b_out, n_heads):
        mha = tr.MultiHeadAttention(x.shape[-1], n_heads)
        with torch.no_grad():
            mha.in_proj_weight.copy_(w_in), mha.in_proj_bias.copy_(b_in)
            mha.out_proj.weight.copy_(w_out), mha.out_proj.bias.copy_(b_out)
        return mha(x, causal=True)

    def via_torch_module(x, w_in, b_in, w_out, b_out, n_heads):
        mha = nn.MultiheadAttention(x.shape[-1], n_heads, batch_first=True)
        T = x.shape[1]
        return mha(x, x, x, attn_mask=torch.ones(T, T, dtype=torch.bool).triu(1))[0]

    def via_function(x, w_in, b_in, w_out, b_out, n_heads):
        B, T, E = x.shape
        q, k, v = (x @ w_in.T + b_in).chunk(3, dim=-1)
        q, k, v = (t.view(B, T, n_heads, -1).transpose(1, 2) for t in (q, k, v))
        out = tr.attention(q, k, v, causal=True)[0]
        return out.transpose(1, 2).reshape(B, T, E) @ w_out.T + b_out

    for fn in (via_course, via_torch_module, via_function):
        result = check_causal_attention(fn)
        assert result.status == "failed" and "an existing implementation" in result.text, fn


def test_head_role_exercise_refuses_the_checks_own_measurement():
    from fromscratch import exercises
    from fromscratch.checks import transformer as checks

    ex = exercises.get("transformer-head-role")
    ns = {"__name__": "__exercise__"}
    exec(compile(ex.setup, "<setup>", "exec"), ns)
    result = checks.check_head_role(checks.head_drop, ns["relation_models"][0],
                                    ns["X_rel_val"], ns["Y_rel_val"])
    assert result.status == "failed" and "a part of the check itself" in result.text
    assert result.refused == "fromscratch.checks.transformer.head_drop"


def test_check_function_refuses_a_function_that_changes_its_inputs():
    def reference(x):
        return x * 2

    def in_place(x):
        return x.mul_(2)

    cases = [Case((torch.ones(3),), label="ones")]
    result = check_function("demo", in_place, reference, cases, strict=False)
    assert not result.passed and "changed its input tensors (x)" in result.text
    assert check_function("demo", reference, reference, cases, strict=False).passed


# --- issue 17: one mechanism per class of wrong answers, one example per exercise kind ---

def test_guard_refuses_by_execution_aliases_closures_partials_and_check_code():
    import functools
    import sys

    import torch.nn.functional as F

    from fromscratch.checks import cnn as cnn_checks
    from fromscratch.checks.core import Case, check_function

    cases = [Case((torch.randn(1, 1, 4, 4), 2))]
    ref = cnn_checks._ref_max_pool
    forbid = [(F, "max_pool2d")]
    alias = F.max_pool2d
    closure = (lambda f: (lambda x, k: f(x, k)))(alias)
    cheats = {"an alias imported before": lambda x, k: alias(x, k),
              "a closure": closure,
              "a partial": functools.partial(torch.max_pool2d),
              "the check's own reference": lambda x, k: ref(x, k)}
    for name, cheat in cheats.items():
        r = check_function("demo", cheat, ref, cases,
                           forbid=forbid + [torch.max_pool2d], strict=False)
        assert r.status == "failed" and "the check refuses it" in r.text, name
        assert r.refused, name
    assert sys.getprofile() is None


def test_guard_keeps_a_previous_profiler_and_refuses_switching_it_off():
    import sys

    from fromscratch.checks.core import Case, check_function

    seen = []

    def mine(frame, event, arg):
        seen.append(event)

    cases = [Case((torch.ones(2),))]
    sys.setprofile(mine)
    try:
        assert check_function("demo", _ref, _ref, cases, strict=False).passed
        assert sys.getprofile() is mine and seen  # restored, and it kept receiving events
    finally:
        sys.setprofile(None)

    def switch_off(x):
        sys.setprofile(None)
        return x * 2

    r = check_function("demo", switch_off, _ref, cases, strict=False)
    assert r.status == "failed" and "tracing" in r.text


def test_measurement_needs_a_fresh_input_and_never_prints_the_value():
    from fromscratch.checks.core import check_measurement

    def fresh(g):
        x = torch.rand(50, generator=g)
        return (x,), x.mean().item(), "50 numbers drawn at check time"

    x = torch.arange(10.0)
    honest = check_measurement("demo", lambda t: t.mean().item(), "m", (x,), 4.5, fresh=fresh)
    assert honest.passed
    stored = check_measurement("demo", lambda t: 4.5, "m", (x,), 4.5, fresh=fresh)
    assert stored.status == "failed" and "fresh input" in stored.text
    assert "same number as for the first input" in stored.text
    wrong = check_measurement("demo", lambda t: t.sum().item(), "m", (x,), 4.5, fresh=fresh)
    assert "4.5" not in wrong.text and "too high" in wrong.text


def test_model_checks_refuse_a_course_model_anywhere_and_sorting_in_the_forward():
    import torch.nn as nn

    from fromscratch.checks.core import check_trained_model

    class Course(nn.Linear):
        pass

    class Sorts(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 4)

        def forward(self, x):
            sorted([3, 1, 2])
            return self.lin(x)

    def run(factory, **kw):
        return check_trained_model(
            "demo", factory, "make", (), probe=torch.zeros(2, 3), probe_text="zeros (2, 3)",
            out_shape=(2, 4), shape_hint="end with 4 outputs", train=lambda m: 1.0,
            bar=0.5, score_text=str, strict=False, **kw)

    wrapped = run(lambda: nn.Sequential(nn.Identity(), Course(3, 4)), refuse_classes=[Course])
    assert wrapped.status == "failed" and "`1` inside the model is the course's Course" in \
        wrapped.text and wrapped.refused
    assert run(lambda: nn.Linear(3, 4), refuse_classes=[Course]).passed
    sorting = run(Sorts, forbid=[sorted])
    assert sorting.status == "failed" and "builtins.sorted" in sorting.text
    assert run(lambda: nn.Linear(3, 4), forbid=[sorted]).passed  # the check's code may sort


def _where(fn, text):
    """The line of ``fn``'s source that holds ``text``: (line number, stripped line)."""
    import inspect

    lines, first = inspect.getsourcelines(fn)
    index = next(i for i, line in enumerate(lines) if text in line)
    return first + index, lines[index].strip()


def test_a_crash_inside_a_check_names_the_learners_line():
    cases = [Case((torch.ones(2, 4),))]

    def flatten_then_scale(x):
        flat = x.reshape(-1)
        return flat.view(3, -1) * 2  # 8 values do not fill rows of 3

    r = check_function("demo", flatten_then_scale, _ref, cases)
    number, line = _where(flatten_then_scale, "view(3, -1)")
    assert r.status == "failed" and "raised RuntimeError" in r.text
    assert (f"(in your code, line {number} of `flatten_then_scale` in test_checks.py: {line})"
            in r.text), r.text
    # a crash inside PyTorch called by the learner still names the learner's line, not
    # PyTorch's; one in the course's own code (no learner frame) names no line
    class Broken(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.linear(x, torch.ones(3, 5))

    from fromscratch.checks.core import check_output_shape

    r = check_output_shape("demo", Broken(), torch.ones(2, 4), (2, 3), "a (2, 4) batch", "h")
    number, line = _where(Broken.forward, "linear(")
    assert f"line {number} of `forward` in test_checks.py: {line})" in r.text, r.text


_CELL = """import torch

def pool(x):
    n = x.shape[0]
    return x.view(n, 5, -1).amax(-1)
"""

_CHECK_IN_A_KERNEL = r"""
import sys
from IPython.core.interactiveshell import InteractiveShell
from ipykernel.compiler import XCachingCompiler
from IPython.core.compilerop import CachingCompiler
import torch
from fromscratch.checks.core import Case, check_function

for compiler in (CachingCompiler, XCachingCompiler):
    shell = InteractiveShell.instance(compiler_class=compiler)
    shell.run_cell("x = 1", store_history=True)
    shell.run_cell(sys.argv[1], store_history=True)  # the learner's cell: In[2]
    r = check_function("demo", shell.user_ns["pool"], lambda x: x.amax(-1),
                       [Case((torch.ones(2, 4),))])
    print(compiler.__name__, r.text.replace("\n", " | "))
    InteractiveShell.clear_instance()
"""


def test_a_crash_in_a_notebook_cell_names_the_cell_and_its_line(tmp_path):
    """As in JupyterLab (ipykernel's cell files, /tmp/ipykernel_.../....py) and in a plain
    IPython (<ipython-input-...>): the learner's cell is In[2], the crash on its line 5."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, IPYTHONDIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _CHECK_IN_A_KERNEL, _CELL], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("CachingCompiler",
                                                                     "XCachingCompiler"))]
    assert len(lines) == 2, out.stdout
    for line in lines:
        assert "raised RuntimeError" in line, line
        assert ("(in your code, line 5 of `pool` in cell In[2]: "
                "return x.view(n, 5, -1).amax(-1))") in line, line
