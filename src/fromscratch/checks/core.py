"""The machinery every chapter's checks share."""

from __future__ import annotations

import inspect
import math
import os
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch

PASS, FAIL, TODO = "passed", "failed", "not attempted"
_ICON = {PASS: "PASS", FAIL: "FAIL", TODO: "TODO"}


class CheckFailed(AssertionError):
    """Raised by a failing check in strict mode; its message is the whole feedback."""

    def _render_traceback_(self):  # IPython shows the feedback, not a traceback
        return [str(self)]


@dataclass
class CheckResult:
    """What a check found. Its text is what the learner reads."""

    exercise: str
    status: str  # "passed", "failed" or "not attempted"
    lines: list = field(default_factory=list)
    cases_passed: int = 0
    cases_total: int = 0

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def text(self) -> str:
        head = f"[{_ICON[self.status]}] {self.exercise}: "
        return head + "\n".join(self.lines)

    def __repr__(self) -> str:
        """The text, wrapped to fit a notebook cell (the website does not scroll sideways)."""
        wrapped = []
        for line in self.text.splitlines():
            wrapped += textwrap.wrap(line, width=90, subsequent_indent="    ",
                                     break_long_words=False, break_on_hyphens=False) or [""]
        return "\n".join(wrapped)

    __str__ = __repr__

    def to_dict(self) -> dict:
        return {
            "exercise": self.exercise,
            "status": self.status,
            "cases_passed": self.cases_passed,
            "cases_total": self.cases_total,
            "text": self.text,
        }


@dataclass
class Case:
    """One input to run: positional and keyword arguments plus a readable description."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def describe(self, names: Sequence[str] = ()) -> str:
        """The arguments, named after the reference function's parameters when known."""
        parts = [f"{n}={describe(a)}" if n else describe(a)
                 for n, a in zip(list(names) + [""] * len(self.args), self.args)]
        parts += [f"{k}={describe(v)}" for k, v in self.kwargs.items()]
        text = ", ".join(parts)
        return f"{self.label}: {text}" if self.label else text


def arg_names(fn: Callable) -> list:
    """Parameter names of ``fn`` (empty when they cannot be read)."""
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []


def describe(value: Any, max_values: int = 6, full_up_to: int = 25) -> str:
    """A readable description of a value: small tensors in full, larger ones by shape and
    their first few numbers."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        if 0 < t.numel() <= full_up_to:
            return f"tensor of shape {tuple(t.shape)} {_nested(t.squeeze().tolist())}"
        flat = t.flatten()
        head = ", ".join(_fmt(v) for v in flat[:max_values].tolist())
        more = ", ..." if flat.numel() > max_values else ""
        return f"tensor of shape {tuple(value.shape)} [{head}{more}]"
    if isinstance(value, float):
        return _fmt(value)
    if isinstance(value, (tuple, list)) and len(value) <= 4:
        inner = ", ".join(describe(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _nested(values) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return _fmt(values)


def _fmt(v) -> str:
    if isinstance(v, bool) or not isinstance(v, float):
        return str(v)
    return f"{v:.4g}"


def compare(expected: Any, received: Any, atol: float = 1e-5, rtol: float = 1e-4) -> Optional[str]:
    """``None`` if ``received`` matches ``expected``; otherwise what differs, in words.
    Tuples (several returned values) are compared element by element."""
    if isinstance(expected, tuple):
        if not isinstance(received, (tuple, list)) or len(received) != len(expected):
            return (f"expected a tuple of {len(expected)} values, received "
                    f"{describe(received)}")
        for i, (e, r) in enumerate(zip(expected, received)):
            problem = compare(e, r, atol, rtol)
            if problem is not None:
                return f"returned value {i + 1} of {len(expected)}: {problem}"
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(received, torch.Tensor):
            return f"expected a tensor of shape {tuple(expected.shape)}, received {describe(received)}"
        if tuple(received.shape) != tuple(expected.shape):
            return (
                f"expected shape {tuple(expected.shape)}, received shape {tuple(received.shape)}"
            )
        if received.dtype.is_floating_point != expected.dtype.is_floating_point:
            return f"expected dtype {expected.dtype}, received dtype {received.dtype}"
        exp = expected.detach().double()
        got = received.detach().double().to(exp.device)
        bad = ~torch.isclose(got, exp, atol=atol, rtol=rtol, equal_nan=False)
        if bad.any():
            idx = tuple(int(i) for i in bad.nonzero()[0].tolist())
            diff = (got - exp).abs().nan_to_num(math.inf).max().item()
            return (
                f"values differ at {int(bad.sum())} of {exp.numel()} positions; first at index "
                f"{idx}: expected {_fmt(exp[idx].item())}, received {_fmt(got[idx].item())} "
                f"(largest difference {_fmt(diff)})"
            )
        return None
    if isinstance(received, torch.Tensor) and received.numel() != 1:
        return f"expected {describe(expected)}, received {describe(received)}"
    if isinstance(expected, float) or isinstance(received, float):
        try:
            r = float(received)
        except (TypeError, ValueError):
            return f"expected a number like {_fmt(float(expected))}, received {describe(received)}"
        if not math.isclose(r, float(expected), rel_tol=rtol, abs_tol=atol):
            return f"expected {_fmt(float(expected))}, received {_fmt(r)}"
        return None
    if received != expected:
        return f"expected {describe(expected)}, received {describe(received)}"
    return None


def _short_error(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def not_attempted(exercise: str, name: str, state: str = "still raises NotImplementedError") -> CheckResult:
    return CheckResult(
        exercise,
        TODO,
        [
            f"`{name}` {state}.",
            "Replace the line `raise NotImplementedError()` with your code, run that cell, "
            "then run this check again.",
        ],
        0,
        1,
    )


def check_function(
    exercise: str,
    fn: Callable,
    reference: Callable,
    cases: Sequence[Case],
    *,
    mistakes: Sequence[tuple] = (),
    hint: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    forbid: Sequence = (),
    strict: Optional[bool] = None,
) -> CheckResult:
    """Run ``fn`` and ``reference`` on every case and compare.

    ``mistakes`` holds ``(wrong_fn, message)`` pairs: typical wrong implementations. When
    the learner's output equals one of them, the check names that mistake. While ``fn``
    runs, the implementations in ``forbid`` (see :func:`forbidden`) raise, so a solution
    that only calls the course's or PyTorch's version of the piece is refused by name.
    """
    name = getattr(fn, "__name__", "your function")
    if not callable(fn):
        return finish(
            CheckResult(exercise, FAIL, [f"expected a function, received {describe(fn)}."]),
            strict,
        )
    passed = 0
    names = arg_names(reference)
    for number, case in enumerate(cases, start=1):
        expected = reference(*case.args, **case.kwargs)
        args, kwargs = _clone(case.args), _clone(case.kwargs)
        try:
            with forbidden(*forbid):
                received = fn(*args, **kwargs)
        except NotImplementedError:
            return finish(not_attempted(exercise, name), strict)
        except UsedForbidden as exc:
            return used_forbidden(exercise, name, exc.name, strict)
        except Exception as exc:  # the learner's bug, reported without a traceback
            lines = [
                f"case {number} of {len(cases)} raised {_short_error(exc)}",
                f"input: {case.describe(names)}",
                f"expected output: {describe(expected)}",
            ]
            lines += [f"hint: {hint}"] if hint else []
            return finish(CheckResult(exercise, FAIL, lines, passed, len(cases)), strict)
        changed = _changed_inputs(case, args, kwargs, names)
        if changed:
            return finish(CheckResult(exercise, FAIL, [
                f"case {number} of {len(cases)}: `{name}` changed its input tensors "
                f"({', '.join(changed)}) in place (mul_, add_, neg_, x[...] = ...); the "
                "caller's data must stay as it was.",
                "hint: compute a new tensor: x * a + b, not x.mul_(a).add_(b)."],
                passed, len(cases)), strict)
        problem = compare(expected, received, atol, rtol)
        if problem is not None:
            lines = [
                f"case {number} of {len(cases)} is wrong",
                f"input: {case.describe(names)}",
                f"expected: {describe(expected)}",
                f"received: {describe(received)}",
                f"difference: {problem}",
            ]
            diagnosis = _diagnose(case, received, mistakes, atol, rtol)
            if diagnosis:
                lines.append(f"likely mistake: {diagnosis}")
            elif hint:
                lines.append(f"hint: {hint}")
            return finish(CheckResult(exercise, FAIL, lines, passed, len(cases)), strict)
        passed += 1
    return finish(
        CheckResult(exercise, PASS, [f"all {len(cases)} cases match the reference."], passed, passed),
        strict,
    )


def _diagnose(case: Case, received, mistakes, atol, rtol) -> Optional[str]:
    for wrong, message in mistakes:
        try:
            wrong_out = wrong(*_clone(case.args), **_clone(case.kwargs))
        except Exception:
            continue
        if compare(wrong_out, received, atol, rtol) is None:
            return message
    return None


def _changed_inputs(case: Case, args: tuple, kwargs: dict, names: Sequence[str]) -> list:
    """Names of the tensor arguments that the learner's call changed (compared with the
    case's untouched originals)."""
    named = list(zip(list(names) + [f"argument {i + 1}" for i in range(len(args))],
                     case.args, args))
    named += [(k, case.kwargs[k], kwargs[k]) for k in case.kwargs]
    return [n for n, before, after in named if isinstance(before, torch.Tensor)
            and isinstance(after, torch.Tensor) and not torch.equal(before, after)]


def _clone(obj):
    """Give the learner's code copies, so in-place changes cannot alter the reference's inputs."""
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, tuple):
        return tuple(_clone(o) for o in obj)
    if isinstance(obj, list):
        return [_clone(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    return obj


def strict_mode(strict: Optional[bool]) -> bool:
    """Whether a check that does not pass raises: when asked, under the course's grader
    (FROMSCRATCH_STRICT_CHECKS=1), and under nbgrader's Validate and autograde (nbgrader
    sets NBGRADER_EXECUTION), so that its "passes all the tests" is true."""
    if strict is not None:
        return strict
    return (os.environ.get("FROMSCRATCH_STRICT_CHECKS", "0") == "1"
            or bool(os.environ.get("NBGRADER_EXECUTION")))


def finish(result: CheckResult, strict: Optional[bool] = None) -> CheckResult:
    """Return the result; in strict mode a result that did not pass raises CheckFailed."""
    if strict_mode(strict) and not result.passed:
        raise CheckFailed(result.text)
    return result


def passed(exercise: str, message: str, strict: Optional[bool] = None) -> CheckResult:
    return finish(CheckResult(exercise, PASS, [message], 1, 1), strict)


def failed(exercise: str, lines: Sequence[str], strict: Optional[bool] = None) -> CheckResult:
    return finish(CheckResult(exercise, FAIL, list(lines), 0, 1), strict)


# --- Refusing the course's own implementation -------------------------------------------

class UsedForbidden(BaseException):
    """Raised inside a check when learner code calls an implementation it must write itself.

    A BaseException, so that a learner's ``except Exception`` cannot swallow it."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _sentinel_code(qualname: str):
    """A code object, without free variables, that raises UsedForbidden(qualname)."""
    short = qualname.rsplit(".", 1)[-1]
    source = (f"def {short}(*args, **kwargs):\n"
              f"    import fromscratch.checks.core as core\n"
              f"    raise core.UsedForbidden({qualname!r})\n")
    namespace: dict = {}
    exec(compile(source, qualname, "exec"), namespace)
    return namespace[short].__code__


@contextmanager
def forbidden(*targets):
    """Make the given implementations unusable while learner code runs.

    Each target is a Python function (its code is swapped for one that raises
    :class:`UsedForbidden`, so the function fails under every alias it was imported as),
    a ``(owner, attribute)`` pair (the attribute is replaced by such a function, for
    built-ins and wrapped functions whose code cannot be swapped), or the name of a
    PyTorch operator such as ``"aten::_native_multi_head_attention"``: any call that
    reaches that operator raises, whatever Python name led to it (a built-in imported
    under another name before the check ran, ``torch.ops.aten...``). Everything is
    restored on exit, also after an error.
    """
    swapped, replaced = [], []
    ops = {t for t in targets if isinstance(t, str)}
    mode = _ForbiddenOps(ops) if ops else None
    try:
        if mode is not None:
            mode.__enter__()
        for target in targets:
            if isinstance(target, str):
                continue
            if isinstance(target, tuple):
                owner, attr = target
                original = getattr(owner, attr)
                qual = f"{getattr(owner, '__name__', type(owner).__name__)}.{attr}"
                replaced.append((owner, attr, original))
                setattr(owner, attr, _raiser(qual))
                continue
            while hasattr(target, "__wrapped__"):  # a decorated function: block the original
                target = target.__wrapped__
            code = getattr(target, "__code__", None)
            if code is None or code.co_freevars:
                raise TypeError(f"cannot forbid {target!r}: pass (owner, 'name') instead")
            qual = f"{target.__module__}.{target.__qualname__}"
            swapped.append((target, code))
            target.__code__ = _sentinel_code(qual)
        yield
    finally:
        for target, code in swapped:
            target.__code__ = code
        for owner, attr, original in replaced:
            setattr(owner, attr, original)
        if mode is not None:
            mode.__exit__(None, None, None)


class _ForbiddenOps:
    """A PyTorch dispatch mode that raises :class:`UsedForbidden` when one of ``names``
    (operator schema names, ``"aten::..."``) runs; every other operator runs as usual."""

    def __new__(cls, names):
        from torch.utils._python_dispatch import TorchDispatchMode

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                name = func._schema.name
                if name in names:
                    raise UsedForbidden(name.replace("aten::", "torch.ops.aten."))
                return func(*args, **(kwargs or {}))

        return Mode()


def _raiser(qualname: str):
    def blocked(*args, **kwargs):
        raise UsedForbidden(qualname)

    return blocked


def used_forbidden(exercise: str, name: str, what: str, strict: Optional[bool] = None) -> CheckResult:
    return failed(exercise, [
        f"your code calls `{what}`, an existing implementation of what this exercise asks "
        f"you to write (`{name}`).",
        "hint: the check refuses it on purpose: write the computation yourself from tensor "
        "operations; the chapter shows the pieces you need.",
    ], strict)


# --- Shared check patterns ---------------------------------------------------------------

def call_learner(exercise: str, fn: Callable, name: str, args: tuple = (), *,
                 forbid: Sequence = (), strict: Optional[bool] = None, seed: Optional[int] = None):
    """Call learner code ``fn(*args)`` with the ``forbid`` implementations blocked.

    Returns ``(value, None)`` or ``(None, result)`` with a ready CheckResult: not attempted
    (NotImplementedError), refused (an implementation from ``forbid`` was called) or failed
    (any other exception, named without a traceback).
    """
    if not callable(fn):
        return None, failed(exercise, [f"expected the function `{name}`, received {describe(fn)}"],
                            strict)
    try:
        if seed is not None:
            torch.manual_seed(seed)
        with forbidden(*forbid):
            return fn(*args), None
    except NotImplementedError:
        return None, finish(not_attempted(exercise, name), strict)
    except UsedForbidden as exc:
        return None, used_forbidden(exercise, name, exc.name, strict)
    except Exception as exc:
        call = f"{name}({', '.join(describe(a) for a in args)})"
        return None, failed(exercise, [f"{call} raised {_short_error(exc)}"], strict)


def call_factory(exercise: str, factory: Callable, name: str, args: tuple = (),
                 strict: Optional[bool] = None, seed: int = 0, forbid: Sequence = ()):
    """Call a learner's model-building function, seeded; it must return an ``nn.Module``.

    Returns ``(model, None)`` on success or ``(None, result)`` with a ready CheckResult.
    """
    import torch.nn as nn

    model, problem = call_learner(exercise, factory, name, args, forbid=forbid, strict=strict,
                                  seed=seed)
    if problem is not None:
        return None, problem
    if not isinstance(model, nn.Module):
        call = f"{name}({', '.join(map(repr, args))})"
        return None, failed(exercise, [f"{call} must return an nn.Module, got {describe(model)}"],
                            strict)
    return model, None


def check_output_shape(exercise: str, model, x: torch.Tensor, expected_shape: tuple,
                       input_text: str, hint: str, strict: Optional[bool] = None):
    """Run ``model(x)``; ``None`` if it returns a tensor of ``expected_shape``, else a result."""
    try:
        out = model(x)
    except Exception as exc:
        return failed(exercise, [f"the model raised {_short_error(exc)}", f"input: {input_text}",
                                 f"hint: {hint}"], strict)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(expected_shape):
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else describe(out)
        return failed(exercise, [f"input: {input_text}",
                                 f"expected: an output of shape {tuple(expected_shape)}; "
                                 f"received: {got}", f"hint: {hint}"], strict)
    return None


def check_measurement(exercise: str, measure: Callable, name: str, args: tuple, expected: float,
                      *, known: Optional[dict] = None, input_text: str = "", hint: str = "",
                      rel_tol: float = 1e-4, abs_tol: float = 1e-6, forbid: Sequence = (),
                      model=None, success: Callable[[float], str] = None,
                      strict: Optional[bool] = None,
                      random_hint: Optional[str] = None) -> CheckResult:
    """Check an experiment function that returns one number.

    ``measure(*args)`` is called twice, with different random seeds; ``model`` (if given)
    is put in training mode first, as ``fit`` leaves it. Two different results mean the
    measurement is random, which for a model almost always means it was left in training
    mode (dropout active): the feedback says so, or gives ``random_hint`` where another
    cause is likelier. ``known`` maps a message to the value that a typical mistake
    produces; a match names the mistake.
    """
    values = []
    for seed in (0, 1):
        if model is not None:
            model.train()
        value, problem = call_learner(exercise, measure, name, args, forbid=forbid, strict=strict,
                                      seed=seed)
        if problem is not None:
            return problem
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return failed(exercise, [f"`{name}` must return a number, received {describe(value)}"],
                          strict)
        values.append(float(value))
    if model is not None:
        model.eval()
    first, second = values
    lines = [f"input: {input_text}"] if input_text else []
    if not math.isclose(first, second, rel_tol=rel_tol, abs_tol=abs_tol):
        return failed(exercise, lines + [
            f"two calls on the same input returned {first:.6g} and {second:.6g}: the "
            "measurement is random.",
            random_hint or "likely mistake: the model is still in training mode, so dropout "
            "drops different units on every call. Call model.eval() before measuring (and "
            "use torch.no_grad()).",
        ], strict)
    if math.isclose(first, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        return passed(exercise, success(first) if success else f"{first:.6g} matches.", strict)
    lines += [f"expected: {expected:.6g}", f"received: {first:.6g}"]
    matches = [message for message, wrong in (known or {}).items()
               if wrong is not None and math.isclose(first, wrong, rel_tol=rel_tol,
                                                     abs_tol=abs_tol)]
    if matches:  # several mistakes can give the same number: name each of them
        lines.append("likely mistake: " + " Or: ".join(matches))
    elif hint:
        lines.append(f"hint: {hint}")
    return failed(exercise, lines, strict)


def check_trained_model(exercise: str, make_model: Callable, name: str, args: tuple, *,
                        probe: torch.Tensor, probe_text: str, out_shape: tuple, shape_hint: str,
                        train: Callable, bar: float, score_text: Callable[[float], str],
                        requirements: Sequence[Callable] = (),
                        below_bar: Optional[Callable] = None,
                        after_training: Sequence[Callable] = (),
                        success: Optional[Callable] = None, higher_is_better: bool = True,
                        forbid: Sequence = (), strict: Optional[bool] = None,
                        seed: int = 0) -> CheckResult:
    """The shared pattern of every "change the model" exercise.

    1. ``make_model(*args)`` is called (seeded) and must return an ``nn.Module``;
    2. ``model(probe)`` must give an output of ``out_shape``;
    3. each of ``requirements(model)`` returns ``None`` or the feedback lines of what the
       exercise asks for and the model lacks (its architecture, a parameter budget, ...);
    4. ``train(model)`` trains it with the check's fixed recipe and returns its score;
       the score must reach ``bar``. ``below_bar(model, score)`` gives the hint lines then;
    5. each of ``after_training(model)`` returns ``None`` or the feedback lines of what the
       trained model does wrong (e.g. it does not use the part the exercise is about).
    The implementations in ``forbid`` are blocked throughout (see :func:`forbidden`).
    """
    model, problem = call_factory(exercise, make_model, name, args, strict, seed, forbid)
    if problem is not None:
        return problem
    with forbidden(*forbid):
        try:
            problem = check_output_shape(exercise, model, probe, out_shape, probe_text, shape_hint,
                                         strict)
            if problem is not None:
                return problem
            for requirement in requirements:
                lines = requirement(model)
                if lines:
                    return failed(exercise, lines, strict)
            torch.manual_seed(seed)
            score = float(train(model))
        except UsedForbidden as exc:
            return used_forbidden(exercise, name, exc.name, strict)
        except Exception as exc:
            return failed(exercise, [f"training the model raised {_short_error(exc)}",
                                     f"hint: {shape_hint}"], strict)
    good = score >= bar if higher_is_better else score <= bar
    if not good:
        lines = [f"after training with the check's recipe: {score_text(score)}; "
                 f"the bar is {score_text(bar)}."]
        return failed(exercise, lines + (below_bar(model, score) if below_bar else []), strict)
    with forbidden(*forbid):
        for requirement in after_training:
            lines = requirement(model)
            if lines:
                return failed(exercise, lines, strict)
    return passed(exercise, success(model, score) if success else
                  f"{score_text(score)} (bar {score_text(bar)}).", strict)
