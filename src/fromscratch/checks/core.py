"""The machinery every chapter's checks share."""

from __future__ import annotations

import _thread
import functools
import inspect
import math
import os
import sys
import textwrap
import threading
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
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
    #: what the answer executed that the check refuses (an existing implementation of the
    #: piece, or the check's own code); ``None`` when nothing was refused
    refused: Optional[str] = None

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
            "refused": self.refused,
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


def _code_name(filename: str) -> str:
    """A notebook cell as the learner sees it (``cell In[5]``), else the file's name."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        label = shell.compile.format_code_name(filename) if shell is not None else None
    except Exception:  # no IPython, or an IPython without format_code_name
        label = None
    if label:
        return f"cell {label[1]}"
    if filename.startswith("<ipython-input-"):  # older IPython: <ipython-input-5-abc123>
        number = filename[len("<ipython-input-"):].split("-")[0]
        return f"cell In[{number}]" if number.isdigit() else filename
    return filename if filename.startswith("<") else os.path.basename(filename)


def _innermost(exc: BaseException):
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _not_attempted(exc: BaseException) -> bool:
    """Whether ``exc`` is the stub's own ``raise NotImplementedError``: raised by a
    ``raise`` statement of the answer's code, not by a library the answer called (that is
    an attempt that went wrong, reported as an error)."""
    import dis

    if not isinstance(exc, NotImplementedError):
        return False
    told = getattr(exc, "answer_not_attempted", None)  # the grader's judge: found there
    if told is not None:
        return told is True
    tb = _innermost(exc)
    if tb is None or _is_library_frame(tb.tb_frame):
        return False
    code = tb.tb_frame.f_code.co_code
    return 0 <= tb.tb_lasti < len(code) and code[tb.tb_lasti] == dis.opmap["RAISE_VARARGS"]


def _where(exc: BaseException) -> str:
    """Where in the answer's own code ``exc`` happened: `` (your line N: text)``, or ''."""
    import linecache

    told = getattr(exc, "answer_where", None)  # the grader's judge: found there
    if isinstance(told, str):
        return told
    tb, found = exc.__traceback__, None
    while tb is not None:
        if not _is_library_frame(tb.tb_frame) and \
                not tb.tb_frame.f_code.co_filename.startswith(_CHECKS_DIR):
            found = tb
        tb = tb.tb_next
    if found is None:
        return ""
    filename = found.tb_frame.f_code.co_filename
    text = linecache.getline(filename, found.tb_lineno).strip()
    where = f"line {found.tb_lineno} of `{found.tb_frame.f_code.co_name}`"
    if filename not in ("<string>", "<stdin>"):  # the notebook cell or file it is in
        where += f" in {_code_name(filename)}"
    return f" (in your code, {where}" + (f": {text})" if text else ")")


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
    fresh: Optional[Callable] = None,
) -> CheckResult:
    """Run ``fn`` and ``reference`` on every case and compare.

    ``mistakes`` holds ``(wrong_fn, message)`` pairs: typical wrong implementations. When
    the learner's output equals one of them, the check names that mistake. While ``fn``
    runs, the implementations in ``forbid`` (see :func:`forbidden`) raise, so a solution
    that only calls the course's or PyTorch's version of the piece is refused by name.
    While ``fn`` runs it is traced (see :class:`Guard`): entering any implementation in
    ``forbid``, or any code of the checks' own modules, refuses the answer, however it
    was reached. ``fresh(g)`` returns more cases drawn with a generator seeded at check
    time: inputs no answer can have seen before (against answers that store outputs).
    """
    name = getattr(fn, "__name__", "your function")
    if fresh is not None:
        cases = list(cases) + list(fresh(fresh_generator()))
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
            received = call_guarded(fn, args, kwargs, forbid)
        except UsedForbidden as exc:
            return used_forbidden(exercise, name, exc.name, strict)
        except Exception as exc:  # the learner's bug, reported without a traceback
            if _not_attempted(exc):
                return finish(not_attempted(exercise, name), strict)
            lines = [
                f"case {number} of {len(cases)} raised {_short_error(exc)}{_where(exc)}",
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
#
# A check decides by what the learner's code *executes*, not by the names it uses: while
# learner code runs, a profiler (``sys.setprofile``, which also sees calls of C functions)
# watches every function entered. Entering a forbidden function (the course's or
# PyTorch's implementation of the piece the exercise asks for, or any code of the checks'
# own modules: their references and helpers) refuses the answer, however it was reached:
# an alias, an object imported before the check, a wrapper, a closure, a partial, a
# private helper of PyTorch that computes the same (its decompositions and references
# are refused as whole packages), or a verbatim copy of the forbidden code run through
# ``exec`` (recognised by a fingerprint of its bytecode). The refusal is recorded when it
# happens, so catching the exception does not help, and an answer that turns the
# profiler or PyTorch's operator tracing off is refused as well.
#
# "The learner's code" is decided by provenance, not by the file name a code object
# claims: a code object counts as library code only if compiling the library file it
# names yields that very code object.

class UsedForbidden(BaseException):
    """Raised inside a check when learner code calls an implementation it must write itself.

    A BaseException, so that a learner's ``except Exception`` cannot swallow it."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


_CHECKS_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_CORE_FILE = os.path.abspath(__file__)
#: C functions an answer may not call while it is traced: they would switch the tracing
#: off or run code where the profiler does not look (another thread).
_ESCAPES = [(sys, "setprofile"), (sys, "settrace"), (threading, "setprofile"),
            (threading, "settrace"), (_thread, "start_new_thread"),
            (_thread, "start_joinable_thread"), (threading, "setprofile_all_threads"),
            (threading, "settrace_all_threads")]


class Package:
    """A forbid target: every function of a package or module (by where its code lives),
    e.g. ``Package("torch.distributions.kl")``: all of PyTorch's KL formulas at once."""

    def __init__(self, name: str):
        import importlib.util

        self.name = name
        spec = importlib.util.find_spec(name)
        origin = getattr(spec, "origin", None)
        if spec is None or not origin:
            self.prefix = None
        elif spec.submodule_search_locations:  # a package: everything in its folder
            self.prefix = os.path.dirname(os.path.abspath(origin)) + os.sep
        else:
            self.prefix = os.path.abspath(origin)


#: Every guard refuses PyTorch's private reference implementations: its decompositions,
#: references and primitives compute most operators (a max pool, a GRU cell, a BCE loss)
#: from plain tensor operations, so reaching them is reaching the forbidden piece.
_SHIPPED = ("torch._decomp",)
#: ... and its references and primitives when the answer's own code calls them (PyTorch's
#: public functions use some of their helpers, e.g. ``torch.broadcast_shapes``).
_SHIPPED_DIRECT = ("torch._refs", "torch._prims")

#: Switches an answer's own code may not call (the nearest caller outside the standard
#: library is the answer): they turn off the operator tracing or reach the guard itself.
_SWITCH_FUNCS = [(sys, "_getframe"), (sys, "getprofile"), (sys, "gettrace"),
                 (sys, "_current_frames"), ("gc", "get_objects"), ("gc", "get_referrers"),
                 ("gc", "get_referents")]
_SWITCH_C = ("_pop_torch_dispatch_stack", "_push_on_torch_dispatch_stack", "_set_dispatch_mode",
             "_unset_dispatch_mode", "_dispatch_tls_set_dispatch_key_excluded",
             "_dispatch_tls_set_dispatch_key_included", "_pop_torch_function_stack",
             "_push_on_torch_function_stack", "_set_torch_function_state")
_SWITCH_GUARDS = ("_DisableTorchDispatch", "_DisablePythonDispatcher", "_EnablePythonDispatcher",
                  "_ExcludeDispatchKeyGuard", "ExcludeDispatchKeyGuard", "_IncludeDispatchKeyGuard",
                  "_ForceDispatchKeyGuard", "_SetExcludeDispatchKeyGuard", "_DisableFuncTorch",
                  "_PreserveDispatchKeyGuard", "_EnablePreDispatch")
_SWITCH_PACKAGES = ("torch.utils._python_dispatch",)


def _switch_targets() -> list:
    import gc

    found = [(gc if owner == "gc" else owner, attr) for owner, attr in _SWITCH_FUNCS]
    found += [(torch._C, n) for n in _SWITCH_C]
    for n in _SWITCH_GUARDS:
        cls = getattr(torch._C, n, None)
        if cls is not None:
            found += [(cls, "__enter__"), (cls, "__init__")]
    return found


def _library_roots() -> tuple:
    """Folders whose code is not the learner's: the course package, PyTorch, NumPy and the
    standard library (the learner's code is a notebook cell, a script or a test file)."""
    import sysconfig

    roots = {os.path.dirname(os.path.dirname(_CHECKS_DIR.rstrip(os.sep))),  # fromscratch/
             os.path.dirname(torch.__file__)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    return tuple(os.path.abspath(r) + os.sep for r in roots)


def _stdlib_roots() -> tuple:
    import sysconfig

    paths = sysconfig.get_paths()
    return (tuple(os.path.abspath(paths[k]) + os.sep for k in ("stdlib", "platstdlib")
                  if paths.get(k)),
            tuple(os.path.abspath(paths[k]) + os.sep for k in ("purelib", "platlib")
                  if paths.get(k)))


_ROOTS: tuple = ()
_STD: tuple = ()
_REAL: dict = {}  # file name -> the code objects compiling that file yields
_LEARNER: dict = {}  # code object -> whether it is the learner's


def _all_codes(code, out: set) -> set:
    out.add(code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _all_codes(const, out)
    return out


def _real_codes(filename: str) -> frozenset:
    """The code objects that the library file ``filename`` (or the frozen module
    ``<frozen name>``) really holds: compiled from its source once, then remembered."""
    codes = _REAL.get(filename)
    if codes is None:
        path = filename
        if filename.startswith("<frozen "):
            module = sys.modules.get(filename[len("<frozen "):-1])
            path = getattr(module, "__file__", None) or ""
        codes = frozenset()
        if os.path.isfile(path):
            try:
                import tokenize

                with tokenize.open(path) as f:
                    source = f.read()
                codes = frozenset(_all_codes(compile(source, filename, "exec",
                                                     dont_inherit=True), set()))
            except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
                codes = frozenset()
        _REAL[filename] = codes
    return codes


def _is_library_code(code) -> bool:
    """Whether ``code`` is library code: it claims a file of the course package, PyTorch,
    NumPy or the standard library, and that file really holds it (an answer compiled
    under a borrowed file name is the learner's all the same)."""
    mine = _LEARNER.get(code)
    if mine is None:
        mine = _LEARNER[code] = not (_claims_library(code)
                                     and code in _real_codes(code.co_filename))
    return not mine


_FRAMES: dict = {}  # (code, id of its globals) -> whether a library module runs it


def _claims_library(code) -> bool:
    global _ROOTS
    if not _ROOTS:
        _ROOTS = _library_roots()
    name = code.co_filename
    return name.startswith("<frozen") or name.startswith(_ROOTS)


def _is_library_frame(frame, verify: bool = False) -> bool:
    """Whether ``frame`` runs library code: code of a library module, run in that module's
    namespace (with ``verify``, also proven to be compiled from the file it names, see
    :func:`_is_library_code`: the guard verifies wherever its verdict would let something
    through), or code a library generated at run time (a dataclass's ``__init__``, a named
    tuple's ``__new__``) that runs in a library module's namespace."""
    code, namespace = frame.f_code, frame.f_globals
    key = (code, id(namespace))
    found = _FRAMES.get(key)
    if found is None:
        name = namespace.get("__name__", "")
        module = sys.modules.get(name) if isinstance(name, str) else None
        own = module is not None and getattr(module, "__dict__", None) is namespace
        file = os.path.abspath(getattr(module, "__file__", None) or "") if own else ""
        if _claims_library(code):
            found = own and (os.path.abspath(code.co_filename) == file
                             or code.co_filename == f"<frozen {name}>")
        elif namespace.get("__builtins__") == {} and name.startswith("namedtuple_"):
            found = code.co_names == ("_tuple_new",)  # collections.namedtuple's __new__
        else:  # a method generated at run time in a library module's namespace
            found = (own and file.startswith(_ROOTS) and not os.path.isfile(code.co_filename)
                     and code.co_name.startswith("__") and code.co_name.endswith("__"))
        _FRAMES[key] = found
    if found and verify and _claims_library(code):
        return _is_library_code(code)
    return found


def _is_stdlib_frame(frame, verify: bool = False) -> bool:
    global _STD
    if not _STD:
        _STD = _stdlib_roots()
    name = frame.f_code.co_filename
    std, site = _STD
    return (name.startswith("<frozen") or (name.startswith(std) and not name.startswith(site))) \
        and _is_library_frame(frame, verify)


#: Switches that the standard library itself calls for its own ends (logging and
#: namedtuple read the caller's frame): refused only when the answer calls them itself,
#: directly or through ``inspect``.
_FRAME_SWITCHES = ("sys._getframe", "sys._current_frames")


def _called_by_learner(frame, through_inspect_only: bool = False) -> bool:
    """Whether the nearest caller outside the standard library's plumbing (contextlib,
    functools, inspect, threading, ...; with ``through_inspect_only``, only ``inspect``)
    is the learner's code (verified: a frame that only claims to be library code is the
    learner's)."""
    while frame is not None and _is_stdlib_frame(frame, verify=True) and (
            not through_inspect_only or frame.f_globals.get("__name__") == "inspect"):
        frame = frame.f_back
    return frame is not None and not _is_library_frame(frame, verify=True)


def _importing(frame) -> bool:
    """Whether ``frame`` (a module's body) runs because the import system imports it."""
    caller = frame.f_back
    return (caller is not None and caller.f_code.co_filename.startswith("<frozen importlib")
            and _is_library_frame(caller, verify=True))


#: the smallest code object (bytes of bytecode) whose copy is refused: a formula of a few
#: lines (a loss, a sampling step) is written the same way by anyone who gets it right
_COPY_MIN_BYTES = 250
_PRINTS: dict = {}  # code object -> its fingerprint


_SKIP_OPS = frozenset({"CACHE", "NOP", "RESUME", "PRECALL", "PUSH_NULL", "EXTENDED_ARG",
                       "KW_NAMES"})
_SAME_OP = {"LOAD_METHOD": "LOAD_ATTR", "JUMP_BACKWARD_NO_INTERRUPT": "JUMP_BACKWARD"}


def _fingerprint(code):
    """What a code object computes, without where or how exactly it was compiled: its
    instructions with the names and constants they use (nested code by fingerprint,
    strings such as docstrings left out, jump targets ignored) and its variables' names.
    A verbatim copy (``exec(inspect.getsource(f))``, also under another function name) has
    the fingerprint of the original; an answer written independently practically never
    has, down to every variable's name."""
    import dis

    fp = _PRINTS.get(code)
    if fp is None:
        ops = []
        for ins in dis.get_instructions(code):
            op = ins.opname
            if op in _SKIP_OPS:
                continue
            value = ins.argval
            if isinstance(value, types.CodeType):
                value = _fingerprint(value)
            elif isinstance(value, str) and op == "LOAD_CONST":
                value = ""
            elif "JUMP" in op or op.startswith(("FOR_ITER", "SEND", "POP_JUMP")) \
                    or "FAST" in op or "DEREF" in op or "CLOSURE" in op:
                value = None
            elif not isinstance(value, (str, int, float, bool, type(None))):
                value = repr(value)
            ops.append((_SAME_OP.get(op, op), value))
        fp = _PRINTS[code] = hash((tuple(ops), code.co_argcount, code.co_kwonlyargcount,
                                   code.co_varnames, code.co_freevars, code.co_cellvars))
    return fp


_CHECK_PRINTS: dict = {}


def _check_prints() -> dict:
    """Fingerprints of every function in the checks' own modules (core excepted)."""
    if not _CHECK_PRINTS:
        for file in sorted(os.listdir(_CHECKS_DIR)):
            path = os.path.join(_CHECKS_DIR, file)
            if not file.endswith(".py") or path == _CORE_FILE:
                continue
            module = f"fromscratch.checks.{file[:-3]}"
            for code in _real_codes(path):
                if code.co_name != "<module>" and len(code.co_code) >= _COPY_MIN_BYTES:
                    _CHECK_PRINTS.setdefault(_fingerprint(code), f"{module}.{code.co_qualname}")
        _CHECK_PRINTS.setdefault(None, "")
    return _CHECK_PRINTS


def _qualname(obj) -> str:
    owner = getattr(obj, "__self__", None)
    if type(owner).__name__ == "_VariableFunctionsClass" or \
            getattr(owner, "__name__", None) == "_VariableFunctionsClass":
        return f"torch.{obj.__name__}"
    if getattr(obj, "__qualname__", "").startswith("TensorBase."):
        return "torch.Tensor." + obj.__name__
    module = getattr(obj, "__module__", None) or getattr(
        getattr(obj, "__self__", None), "__name__", None)
    qual = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", repr(obj))
    return f"{module}.{qual}" if module else qual


class _Targets:
    """The forbidden implementations, in the forms the profiler sees them: code objects
    (Python functions, methods, every function of a class), their fingerprints (copies),
    packages (by folder), C functions (by identity, and tensor methods by name) and
    PyTorch operators (``"aten::..."``, caught at dispatch). ``switch=True``: refused only
    when the answer's own code calls them (see :func:`_called_by_learner`)."""

    def __init__(self, targets, switches=()):
        self.codes: dict = {}
        self.prints: dict = {}
        self.files: list = []
        self.c_funcs: dict = {}
        self.c_methods: dict = {}  # name -> [(C type, qualified name)]: methods of C types
        self.ops: set = set()
        self.switches: set = set()
        for target in targets:
            self.add(target)
        for target in switches:
            self.add(target, switch=True)
        # frozen: what the guard refuses cannot be changed while it runs
        self.codes, self.prints = MappingProxyType(self.codes), MappingProxyType(self.prints)
        self.c_funcs = MappingProxyType(self.c_funcs)
        self.c_methods = MappingProxyType({k: tuple(v) for k, v in self.c_methods.items()})
        self.ops, self.switches = frozenset(self.ops), frozenset(self.switches)
        self.files = tuple(self.files)
        self.switch_packages = tuple(f"{package}." for _, package in self.files
                                     if package in self.switches)
        self.prefixes = tuple(prefix for prefix, _ in self.files)

    def add(self, target, name: Optional[str] = None, switch: bool = False) -> None:
        if isinstance(target, str):
            if target.startswith("aten::"):
                self.ops.add(target)
            else:
                self.add(Package(target), name, switch)
            return
        if isinstance(target, Package):
            if target.prefix:
                self.files.append((target.prefix, target.name))
                if switch:
                    self.switches.add(target.name)
            return
        if isinstance(target, tuple):
            owner, attr = target
            if owner is torch.ops.aten:  # an operator packet: caught where it is dispatched
                self.ops.add(f"aten::{attr}")
                return
            if not hasattr(owner, attr):
                return
            owner_name = getattr(owner, "__name__", type(owner).__name__)
            self.add(getattr(owner, attr) if not isinstance(owner, type)
                     else owner.__dict__.get(attr, getattr(owner, attr)),
                     name or f"{owner_name}.{attr}", switch)
            return
        if isinstance(target, type):
            for attr, value in vars(target).items():
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                if isinstance(value, property):
                    value = value.fget
                if callable(value) and not isinstance(value, type):
                    self.add(value, f"{_qualname(target)}.{attr}", switch)
            return
        if isinstance(target, (staticmethod, classmethod)):
            target = target.__func__
        if type(target).__name__ == "instancemethod":  # a method of a pybind11 class
            target = target.__func__
        target = getattr(target, "__func__", target)  # a bound method
        while hasattr(target, "__wrapped__"):  # a decorated function: its original too
            self.add(target.__wrapped__, name, switch)
            target = target.__wrapped__
        code = getattr(target, "__code__", None)
        if code is not None:
            label = name or _qualname(target)
            self.codes.setdefault(code, label)
            for inner in _all_codes(code, set()):  # copies of it, or of its inner functions
                if len(inner.co_code) >= _COPY_MIN_BYTES:
                    self.prints.setdefault(_fingerprint(inner), label)
            if switch:
                self.switches.add(label)
            return
        if isinstance(target, functools.partial):
            self.add(target.func, name, switch)
            return
        label = name or _qualname(target)
        if switch:
            self.switches.add(label)
        if type(target).__name__ in ("method_descriptor", "wrapper_descriptor"):
            owner = target.__objclass__  # a method of a C type (torch.Tensor.sort, list.sort)
            self.c_methods.setdefault(target.__name__, []).append((owner, label))
            return
        if callable(target):
            self.c_funcs[id(target)] = (target, label)


def _targets(forbid) -> _Targets:
    """The targets of a guard: ``forbid``, PyTorch's private reference implementations,
    and what would switch the guard off."""
    if isinstance(forbid, _Targets):
        return forbid
    return _Targets(list(forbid) + _ESCAPES + list(_SHIPPED),
                    _switch_targets() + list(_SWITCH_PACKAGES) + list(_SHIPPED_DIRECT))


def _calls_torch(fn) -> bool:
    """Whether the C function ``fn`` is one of PyTorch's (a ``torch.*`` function or a
    tensor method), whose operators the guard's dispatch mode must see."""
    owner = getattr(fn, "__self__", None)
    return (isinstance(owner, torch.Tensor) or type(owner).__name__ == "_VariableFunctionsClass"
            or getattr(owner, "__name__", None) == "_VariableFunctionsClass"
            or (getattr(fn, "__module__", None) or "").startswith("torch"))


def _dispatch_intact(mode, depth: int) -> bool:
    """Whether PyTorch still sends every operator through the guard's dispatch ``mode``."""
    C = torch._C
    try:
        return (C._len_torch_dispatch_stack() >= depth
                and C._get_dispatch_stack_at(depth - 1) is mode
                and not C._dispatch_tls_is_dispatch_key_excluded(C.DispatchKey.Python)
                and not C._dispatch_tls_is_dispatch_key_excluded(
                    C.DispatchKey.PythonTLSSnapshot))
    except (AttributeError, RuntimeError, IndexError):
        return True


class Guard:
    """Trace learner code while it runs and refuse what it must not execute.

    ``checks``: the code of the checks' own modules (references, variants, helpers) is
    refused too. ``anywhere``: a forbidden function is refused wherever it is entered
    while the guard is on (the guard wraps a call of the learner's function); otherwise
    only when the learner's own code is on the call stack (the guard wraps a check's
    training loop, which calls the learner's model but may use the course's code itself).

    The guard's state lives in the profiler's closure, out of the answer's reach; the
    switches that would reach it (frames, the garbage collector, the profiler itself) or
    turn the operator tracing off are refused when the answer calls them.
    """

    def __init__(self, forbid=(), *, checks: bool = True, anywhere: bool = True):
        self._make = functools.partial(_make_profile, _targets(forbid), checks, anywhere)
        self._run = None

    @property
    def violation(self) -> Optional[str]:
        return self._run.violation() if self._run is not None else None

    def check_callable(self, fn) -> None:
        """Refuse ``fn`` itself when it is a forbidden C function, or a partial or bound
        wrapper around one: calls from C to C (a partial calling a builtin) never reach
        the profiler (PyTorch's operators are caught at dispatch all the same)."""
        self._run.check_callable(fn)

    def __enter__(self):
        self._run = self._make()
        self._run.enter(sys._getframe(1))
        return self

    def __exit__(self, exc_type, exc, tb):
        violation = self._run.exit()
        if violation is not None and not isinstance(exc, UsedForbidden):
            raise UsedForbidden(violation)
        return False


class _Run(tuple):
    """The guard's handles (functions closed over its state): enter, exit, violation,
    check_callable."""

    enter = property(lambda self: self[0])
    exit = property(lambda self: self[1])
    violation = property(lambda self: self[2])
    check_callable = property(lambda self: self[3])


def _make_profile(targets: _Targets, checks: bool, anywhere: bool) -> _Run:
    """The profiler of one guarded run and the functions that start and stop it; every
    piece of state is a local of this function."""
    verdicts: dict = {}  # code -> qualified name if forbidden, else ""
    state = {"violation": None, "closing": False, "entry": None, "previous": None,
             "mode": None, "depth": 0, "profile": None}
    codes, prints, prefixes, files = targets.codes, targets.prints, targets.prefixes, \
        targets.files
    c_funcs, c_methods, switches = targets.c_funcs.get, targets.c_methods, targets.switches
    switch_packages = targets.switch_packages
    check_prints = _check_prints() if checks else {}
    import torch._ops

    ops_file = torch._ops.__file__

    def refuse(name: str):
        if state["violation"] is None:
            state["violation"] = name
        raise UsedForbidden(name)

    def judge(code, frame=None) -> str:
        name = codes.get(code, "")
        if not name and prefixes and code.co_filename.startswith(prefixes):
            for prefix, package in files:
                if code.co_filename.startswith(prefix):
                    name = f"{package}.{code.co_qualname}"
                    break
        if not name and checks and code.co_filename.startswith(_CHECKS_DIR) \
                and code.co_filename != _CORE_FILE:
            module = os.path.splitext(os.path.basename(code.co_filename))[0]
            name = f"fromscratch.checks.{module}.{code.co_qualname}"
        if not name and len(code.co_code) >= _COPY_MIN_BYTES and code.co_name != "<module>" \
                and not (frame is not None and _is_library_frame(frame)):
            fp = _fingerprint(code)  # the learner's code: a copy of a forbidden one?
            name = prints.get(fp) or check_prints.get(fp, "")
            if name and code not in codes:
                name = f"a copy of {name}"
        verdicts[code] = name
        return name

    def counts(frame) -> bool:
        """Whether a forbidden entry counts: when the guard wraps a learner call, always,
        else only when learner code is on the stack; never while a library module is
        being imported (a lazy import inside PyTorch may sort, and an import broken
        halfway would break later imports)."""
        learner = anywhere
        entry = state["entry"]
        while frame is not None and frame is not entry:
            code = frame.f_code
            if not _is_library_frame(frame, verify=not learner):
                learner = True
            elif code.co_name == "<module>" and _importing(frame):
                return False
            frame = frame.f_back
        return learner

    def hit(name, frame):
        if name in switches or name.startswith(switch_packages):
            if _called_by_learner(frame, name in _FRAME_SWITCHES):
                refuse(name)
        elif counts(frame):
            refuse(name)

    def intact_for(frame) -> None:
        mode = state["mode"]
        if mode is not None and not _is_library_frame(frame) \
                and not _dispatch_intact(mode, state["depth"]):
            refuse("torch.utils._python_dispatch (PyTorch's operator tracing, switched off)")

    def profile(frame, event, arg):
        if state["closing"]:
            return
        if event == "call":
            code = frame.f_code
            name = verdicts.get(code)
            if name is None:
                name = judge(code, frame)
            if name:
                hit(name, frame.f_back)
            elif code.co_filename == ops_file and frame.f_back is not None:
                intact_for(frame.f_back)  # the answer calls an operator: is it traced?
        elif event == "c_call":
            found = c_funcs(id(arg))
            if found is not None and found[0] is arg:
                hit(found[1], frame)
            elif c_methods:
                for owner, name in c_methods.get(getattr(arg, "__name__", None), ()):
                    if isinstance(getattr(arg, "__self__", None), owner):
                        hit(name, frame)
            if _calls_torch(arg):  # the answer calls PyTorch: are its operators traced?
                intact_for(frame)
        previous = state["previous"]
        if previous is not None:
            previous(frame, event, arg)

    def enter(entry):
        state.update(violation=None, closing=False, entry=entry, previous=sys.getprofile())
        elsewhere = _other_thread_problem()
        if elsewhere is not None:
            state["closing"] = True
            refuse(elsewhere)
        if targets.ops:
            state["mode"] = _ForbiddenOps(targets.ops, refuse)
            state["mode"].__enter__()
            state["depth"] = torch._C._len_torch_dispatch_stack()
        # PyTorch's functions as they are called, however they are reached: a C function
        # called from C (``map(torch.gru_cell, ...)``) never reaches the profiler, and a
        # composite operator never reaches the dispatch mode as itself. Only around a
        # call of the learner's function (``anywhere``): around a training loop it would
        # slow every operator down several times
        if anywhere:
            state["function_mode"] = _ForbiddenFunctions(torch_function)
            state["function_mode"].__enter__()
        state["profile"] = profile
        sys.setprofile(profile)

    def torch_function(func, args):
        if state["closing"]:
            return
        found = c_funcs(id(func))
        if found is not None and found[0] is func:
            name = found[1]
        else:
            code = getattr(func, "__code__", None)
            name = (verdicts.get(code) or judge(code)) if code is not None else ""
            if not name and c_methods and args:
                for owner, label in c_methods.get(getattr(func, "__name__", None), ()):
                    if isinstance(args[0], owner):
                        name = label
        if name:
            hit(name, sys._getframe(2))

    def exit():
        current = sys.getprofile()
        state["closing"] = True
        sys.setprofile(state["previous"])
        function_mode = state.pop("function_mode", None)
        if function_mode is not None:
            try:
                function_mode.__exit__(None, None, None)
            except Exception:  # the answer popped it: the dispatch check below names it
                pass
        mode = state["mode"]
        if mode is not None:
            intact = _dispatch_intact(mode, state["depth"])
            state["mode"] = None
            mode.__exit__(None, None, None)
            if not intact and state["violation"] is None:
                state["violation"] = ("torch.utils._python_dispatch (PyTorch's operator "
                                      "tracing, switched off)")
        if current is not profile and state["violation"] is None:
            state["violation"] = "sys.setprofile"  # the answer switched the tracing off
        if state["violation"] is None:
            state["violation"] = _other_thread_problem()
        return state["violation"]

    def check_callable(fn) -> None:
        seen = 0
        while fn is not None and seen < 20:
            found = c_funcs(id(fn))
            if found is not None and found[0] is fn:
                refuse(found[1])
            code = getattr(fn, "__code__", None)
            if code is not None and (verdicts.get(code) or judge(code)):
                refuse(verdicts[code])
            fn = getattr(fn, "func", None) or getattr(fn, "__func__", None)
            seen += 1

    return _Run((enter, exit, lambda: state["violation"], check_callable))


# --- Threads the answer started ----------------------------------------------------------
#
# The profiler and the dispatch mode watch one thread. An answer that hands its work to a
# thread it started (a worker looping on a queue, a ThreadPoolExecutor) would compute the
# forbidden piece where the guard cannot see it. Every thread start is recorded (an audit
# hook, installed once when this module is imported) when the answer's code started it
# (the nearest caller outside the standard library's plumbing is the learner's); a guard
# refuses to run while such a thread is alive, or while any other thread runs the
# learner's code. Threads of IPython, the kernel or a library (tqdm's monitor) are not
# the learner's and do not count; a thread the answer started and let finish is fine.

_LEARNER_THREADS: Any = None  # threading.Thread objects the learner started
_LEARNER_RAW: list = []  # code objects the learner ran with _thread.start_new_thread


def _thread_audit(event, args):
    if event != "_thread.start_new_thread":
        return
    try:
        function = args[0]
        frame = sys._getframe(1)
        if not _called_by_learner(frame):
            return
        owner = getattr(function, "__self__", None)
        if isinstance(owner, threading.Thread):
            _LEARNER_THREADS.add(owner)
        else:
            code = getattr(getattr(function, "__func__", function), "__code__", None)
            _LEARNER_RAW.append(code if code is not None else function)
    except Exception:  # never break a thread start
        pass


def _install_thread_audit() -> None:
    """Record the learner's thread starts: through the audit event (Python 3.12 and
    later raise it), and, since Python 3.11 raises none, through ``threading.Thread.start``
    (every Thread, also a ThreadPoolExecutor's workers, starts there); a raw
    ``_thread.start_new_thread`` running the learner's code is found by its frames."""
    global _LEARNER_THREADS
    import weakref

    if _LEARNER_THREADS is not None:
        return
    _LEARNER_THREADS = weakref.WeakSet()
    sys.addaudithook(_thread_audit)
    original = threading.Thread.start
    if getattr(original, "_fromscratch_records", False):  # this module imported again
        return

    @functools.wraps(original)
    def start(self):
        try:
            if _called_by_learner(sys._getframe(1)):
                _LEARNER_THREADS.add(self)
        except Exception:  # never break a thread start
            pass
        return original(self)

    start._fromscratch_records = True
    threading.Thread.start = start


_install_thread_audit()


def _other_thread_problem() -> Optional[str]:
    """``None``, or what the guard refuses: a thread started by the learner's code that is
    still alive, or another thread that runs the learner's code now."""
    me = threading.get_ident()
    for thread in list(_LEARNER_THREADS):
        if thread.is_alive() and thread.ident != me:
            return f"another thread ({thread.name}, started by your code)"
    raw = tuple(_LEARNER_RAW)
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        bottom = None
        while frame is not None:
            if not _is_library_frame(frame, verify=True):
                name = frame.f_code.co_name
                return f"another thread (running your `{name}`)"
            bottom = frame
            frame = frame.f_back
        if raw and bottom is not None and bottom.f_code in raw:
            return f"another thread (running `{bottom.f_code.co_name}`, started by your code)"
    return None


def guard(forbid: Sequence = (), *, checks: bool = True, anywhere: bool = True) -> Guard:
    """A :class:`Guard` around learner code (see there); use it as a context manager."""
    return Guard(forbid, checks=checks, anywhere=anywhere)


def forbidden(*targets) -> Guard:
    """Refuse the given implementations while the block runs (wherever they are entered).

    Each target is a Python function or method (every alias of it is refused, because
    its code object is what the profiler sees, and so is a verbatim copy, by its
    fingerprint), a class (every method of it), a whole package or module
    (``Package("torch.distributions.kl")`` or its name as a string), a C function such as
    ``torch.sort`` or a tensor method such as ``torch.Tensor.sort``, an ``(owner,
    attribute)`` pair naming one of these, or the name of a PyTorch operator such as
    ``"aten::_native_multi_head_attention"``: any call that reaches that operator raises,
    whatever Python name led to it. Nothing is replaced, so nothing needs to be
    restored."""
    return Guard(targets, checks=False, anywhere=True)


def call_guarded(fn: Callable, args: tuple = (), kwargs: Optional[dict] = None,
                 forbid: Sequence = ()):
    """``fn(*args, **kwargs)`` under a :class:`Guard` that also refuses the checks' own
    code: raises :class:`UsedForbidden` if the call executed something forbidden. An
    :class:`AnswerElsewhere` (the grader's judge) runs the call, guarded, in the answer's
    own process and returns what it sent back."""
    if isinstance(fn, AnswerElsewhere):
        return fn.call_elsewhere(tuple(args), dict(kwargs or {}), list(forbid))
    watching = guard(forbid)
    with watching:
        watching.check_callable(fn)
        del watching  # no local of this frame holds the guard while the answer runs
        return fn(*args, **(kwargs or {}))


class AnswerElsewhere:
    """A learner's function that lives in another process (the grader's sandbox).

    The grader's judge runs a chapter's pristine check in a process where no answer code
    ever ran, with one of these in place of each function the answer cell defined. Every
    call the check makes through :func:`call_guarded` (so :func:`check_function`,
    :func:`call_learner` and :func:`check_measurement`) is sent to the answer's process,
    run there under the same :class:`Guard`, and comes back as plain data; the check then
    compares, diagnoses and words its feedback exactly as in a notebook. Subclasses
    implement :meth:`call_elsewhere` and :meth:`train_elsewhere`."""

    __name__ = "answer"

    def call_elsewhere(self, args: tuple, kwargs: dict, forbid: list):
        raise NotImplementedError

    def train_elsewhere(self, exercise: str, inputs: dict) -> dict:
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.call_elsewhere(args, kwargs, [])


class RunInAnswerProcess(BaseException):
    """Raised in the judge by a check that cannot be decided from data returned by calls
    (it needs the learner's model object itself): the grader runs it in the answer's
    process instead (see ``chapters/instructors.md``)."""


class _ForbiddenOps:
    """A PyTorch dispatch mode that raises :class:`UsedForbidden` when one of ``names``
    (operator schema names, ``"aten::..."``) runs; every other operator runs as usual.
    Operators reached through ``torch.ops.aten`` are refused the same way."""

    def __new__(cls, names, refuse):
        from torch.utils._python_dispatch import TorchDispatchMode

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                name = func._schema.name
                if name in names:
                    refuse(name.replace("aten::", "torch.ops.aten."))
                return func(*args, **(kwargs or {}))

        return Mode()


class _ForbiddenFunctions:
    """A PyTorch function mode that hands each torch function called (``torch.*``,
    ``F.*``, tensor methods) to ``judge(func, args)`` before running it."""

    def __new__(cls, judge):
        from torch.overrides import TorchFunctionMode

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                judge(func, args)
                return func(*args, **(kwargs or {}))

        return Mode()


def _is_switch(what: str) -> bool:
    return ("switched off" in what
            or what.startswith(("torch.utils._python_dispatch", "gc.", "sys."))
            or any(name in what for name in _SWITCH_C + _SWITCH_GUARDS))


def used_forbidden(exercise: str, name: str, what: str, strict: Optional[bool] = None) -> CheckResult:
    if what.startswith("another thread"):
        lines = [f"your code (`{name}`) runs work in {what}: the check traces only the "
                 "thread that calls your function, and the check must see everything your "
                 "function computes.",
                 "hint: the check refuses this on purpose; compute the answer in the "
                 "function itself, and let any thread you started finish (join it) before "
                 "running the check."]
    elif what in ("sys.setprofile", "sys.settrace") or "thread" in what or _is_switch(what):
        lines = [f"your code (`{name}`) calls `{what}`: it switches off the check's tracing of "
                 "what the answer runs, reaches into the check, or runs code where the check "
                 "cannot see it.",
                 "hint: the check refuses this on purpose; compute the answer in plain code."]
    elif what.startswith("a copy of "):
        lines = [f"your code (`{name}`) runs {what.replace('a copy of ', 'a copy of `')}`: the "
                 "same instructions as the course's (or the check's) implementation of what "
                 "this exercise asks you to write.",
                 "hint: the check refuses copies on purpose: write the computation yourself "
                 "from tensor operations; the chapter shows the pieces you need."]
    elif what.startswith("fromscratch.checks."):
        lines = [f"your code (`{name}`) calls `{what}`, a part of the check itself (its "
                 "reference or a helper), not an answer of your own.",
                 "hint: the check refuses it on purpose: write the computation yourself from "
                 "tensor operations; the chapter shows the pieces you need."]
    else:
        lines = [f"your code calls `{what}`, an existing implementation of what this exercise "
                 f"asks you to write (`{name}`).",
                 "hint: the check refuses it on purpose: write the computation yourself from "
                 "tensor operations; the chapter shows the pieces you need."]
    result = failed(exercise, lines, strict=False)
    result.refused = what
    return finish(result, strict)


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
        return call_guarded(fn, args, forbid=forbid), None
    except UsedForbidden as exc:
        return None, used_forbidden(exercise, name, exc.name, strict)
    except Exception as exc:
        if _not_attempted(exc):
            return None, finish(not_attempted(exercise, name), strict)
        call = f"{name}({', '.join(describe(a) for a in args)})"
        return None, failed(exercise, [f"{call} raised {_short_error(exc)}{_where(exc)}"],
                            strict)


def call_factory(exercise: str, factory: Callable, name: str, args: tuple = (),
                 strict: Optional[bool] = None, seed: int = 0, forbid: Sequence = ()):
    """Call a learner's model-building function, seeded; it must return an ``nn.Module``.

    Returns ``(model, None)`` on success or ``(None, result)`` with a ready CheckResult.
    """
    import torch.nn as nn

    if isinstance(factory, AnswerElsewhere):
        raise RunInAnswerProcess(exercise)
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
        return failed(exercise, [f"the model raised {_short_error(exc)}{_where(exc)}",
                                 f"input: {input_text}",
                                 f"hint: {hint}"], strict)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(expected_shape):
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else describe(out)
        return failed(exercise, [f"input: {input_text}",
                                 f"expected: an output of shape {tuple(expected_shape)}; "
                                 f"received: {got}", f"hint: {hint}"], strict)
    return None


def direction(received: float, expected: float) -> str:
    """How a wrong measurement is off, in words, without giving the right value away:
    too high or too low, and roughly by how much."""
    word = "too high" if received > expected else "too low"
    gap = abs(received - expected) / max(abs(expected), 1e-12)
    size = "far " if gap > 0.5 else "slightly " if gap < 0.05 else ""
    rough = "more than 50%" if gap > 0.5 else "less than 5%" if gap < 0.05 else "5% to 50%"
    return f"{size}{word} (off by {rough} of the right value)"


def fresh_generator() -> torch.Generator:
    """A generator seeded at check time from the operating system: an input drawn with it
    cannot have been seen (or stored) before the check ran."""
    return torch.Generator().manual_seed(int.from_bytes(os.urandom(6), "little"))


def _as_number(exercise, name, value, strict):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, failed(exercise, [f"`{name}` must return a number, received "
                                       f"{describe(value)}"], strict)
    return float(value), None


def _known_matches(value, known, rel_tol, abs_tol) -> list:
    return [message for message, wrong in (known or {}).items()
            if wrong is not None and math.isclose(value, wrong, rel_tol=rel_tol, abs_tol=abs_tol)]


def check_measurement(exercise: str, measure: Callable, name: str, args: tuple, expected: float,
                      *, known: Optional[dict] = None, input_text: str = "", hint: str = "",
                      rel_tol: float = 1e-4, abs_tol: float = 1e-6, forbid: Sequence = (),
                      model=None, success: Callable[[float], str] = None,
                      strict: Optional[bool] = None,
                      random_hint: Optional[str] = None,
                      fresh: Optional[Callable] = None) -> CheckResult:
    """Check an experiment function that returns one number.

    ``measure(*args)`` is called twice, with different random seeds; ``model`` (if given)
    is put in training mode first, as ``fit`` leaves it. Two different results mean the
    measurement is random, which for a model almost always means it was left in training
    mode (dropout active): the feedback says so, or gives ``random_hint`` where another
    cause is likelier. ``known`` maps a message to the value that a typical mistake
    produces; a match names the mistake.

    The feedback never prints the right value (only whether the answer is too high or too
    low, and roughly by how much), so it cannot be copied into an answer. ``fresh(g)``,
    given a generator seeded at check time, returns ``(args, expected, input_text)`` or
    ``(args, expected, input_text, known)``: a second input no answer can have seen; a
    passing answer must be right on it too.
    """
    values = []
    for seed in (0, 1):
        if model is not None:
            model.train()
        value, problem = call_learner(exercise, measure, name, args, forbid=forbid, strict=strict,
                                      seed=seed)
        if problem is not None:
            return problem
        value, problem = _as_number(exercise, name, value, strict)
        if problem is not None:
            return problem
        values.append(value)
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
    if not math.isclose(first, expected, rel_tol=rel_tol, abs_tol=abs_tol):
        lines += [f"received: {first:.6g}, {direction(first, expected)}"]
        matches = _known_matches(first, known, rel_tol, abs_tol)
        if matches:  # several mistakes can give the same number: name each of them
            lines.append("likely mistake: " + " Or: ".join(matches))
        elif hint:
            lines.append(f"hint: {hint}")
        return failed(exercise, lines, strict)
    if fresh is not None:
        drawn = fresh(fresh_generator())
        f_args, f_expected, f_text = drawn[:3]
        f_known = drawn[3] if len(drawn) > 3 else {}
        if model is not None:
            model.train()
        value, problem = call_learner(exercise, measure, name, f_args, forbid=forbid,
                                      strict=strict, seed=2)
        if problem is not None:
            return problem
        value, problem = _as_number(exercise, name, value, strict)
        if problem is not None:
            return problem
        if model is not None:
            model.eval()
        if not math.isclose(value, f_expected, rel_tol=rel_tol, abs_tol=abs_tol):
            lines = [f"the first input gives the right value, but a fresh input drawn at "
                     f"check time does not: {f_text}",
                     f"received: {value:.6g}, {direction(value, f_expected)}"]
            matches = _known_matches(value, f_known, rel_tol, abs_tol)
            if math.isclose(value, first, rel_tol=rel_tol, abs_tol=abs_tol):
                matches.insert(0, "your function returned the same number as for the first "
                               "input: it must compute the measurement from the arguments it "
                               "is given, not return a stored number.")
            if matches:
                lines.append("likely mistake: " + " Or: ".join(matches))
            elif hint:
                lines.append(f"hint: {hint}")
            return failed(exercise, lines, strict)
    return passed(exercise, success(first) if success else f"{first:.6g} matches.", strict)


@contextmanager
def _no_guard():
    yield


def held_objects(model, limit: int = 200_000):
    """Everything ``model`` holds, not only its registered submodules and parameters:
    ``(path, object)`` for each object reachable through attributes (also those set with
    ``object.__setattr__``), lists, tuples, sets, dicts, bound methods, functions' closures
    and defaults, and partials. Modules and classes themselves are not entered."""
    seen, stack = set(), [("", model)]
    while stack and len(seen) < limit:
        path, obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (types.ModuleType, str, bytes, int,
                                                float, bool, type(None))) or \
                (isinstance(obj, type) and not _learner_class(obj)):
            continue
        seen.add(id(obj))
        if not isinstance(obj, type):
            yield path, obj
        if isinstance(obj, torch.Tensor):
            continue
        children: list = []
        if isinstance(obj, type):  # a class the learner defined: what it holds
            children = [(f"{obj.__name__}.{k}", v) for k, v in vars(obj).items()
                        if k not in ("__dict__", "__weakref__", "__doc__", "__module__")]
        elif isinstance(obj, dict):
            children = [(f"{path}[{k!r}]", v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children = [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
        elif isinstance(obj, types.MethodType):
            children = [(path, obj.__self__), (path, obj.__func__)]
        elif isinstance(obj, types.FunctionType):
            children = [(path, c.cell_contents) for c in (obj.__closure__ or ())
                        if _cell_full(c)]
            children += [(path, v) for v in (obj.__defaults__ or ())]
            children += [(path, v) for v in (obj.__kwdefaults__ or {}).values()]
            if not _is_library_code(obj.__code__):  # the globals the learner's code reads
                names: set = set()
                for code in _all_codes(obj.__code__, set()):
                    names.update(code.co_names)
                space = obj.__globals__
                children += [(name, space[name]) for name in sorted(names) if name in space]
        elif isinstance(obj, functools.partial):
            children = [(path, obj.func), (path, obj.args), (path, obj.keywords)]
        else:
            try:
                attrs = object.__getattribute__(obj, "__dict__")
            except AttributeError:
                attrs = {}
            children += [(path, cls) for cls in type(obj).__mro__ if _learner_class(cls)]
            for key, value in attrs.items():
                if key in ("_modules", "_parameters", "_buffers") and isinstance(value, dict):
                    children += [(f"{path}.{k}".lstrip("."), v) for k, v in value.items()]
                else:
                    children.append((f"{path}.{key}".lstrip("."), value))
        stack.extend(reversed(children))


def _learner_class(cls) -> bool:
    """Whether the class ``cls`` was defined by the learner's code: one of its functions
    is the learner's (see :func:`_is_library_code`)."""
    try:
        values = list(vars(cls).values())
    except TypeError:
        return False
    for value in values:
        value = getattr(value, "__func__", value)
        code = getattr(value, "__code__", None)
        if isinstance(code, types.CodeType) and not _is_library_code(code):
            return True
    return False


def _cell_full(cell) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


def stored_numbers(model) -> int:
    """Every number the model stores: its parameters (trainable or frozen), its buffers and
    every other tensor it holds anywhere (see :func:`held_objects`), each storage once."""
    counted, total = set(), 0
    for _, obj in held_objects(model):
        if isinstance(obj, torch.Tensor):
            key = (obj.untyped_storage().data_ptr(), obj.storage_offset(), tuple(obj.shape)) \
                if obj.device.type != "meta" else id(obj)
            if key not in counted:
                counted.add(key)
                total += obj.numel()
    return total


def course_model_inside(model, classes: Sequence[type]) -> Optional[list]:
    """``None``, or the feedback lines when ``model`` is, or holds anywhere (see
    :func:`held_objects`: a registered submodule, a plain attribute, a list, a closure),
    an instance of one of ``classes`` (the course's own model of the piece an exercise
    asks the learner to build): a wrapper around it is refused too."""
    classes = tuple(classes)
    if not classes:
        return None
    for path, held in held_objects(model):
        if isinstance(held, classes):
            where = "the model itself" if not path else f"`{path}` inside the model"
            return [f"{where} is the course's {type(held).__name__} "
                    f"({type(held).__module__}); the exercise asks you to build this "
                    "network yourself, so the course's model is refused, also when wrapped "
                    "in another module or stored out of sight.",
                    "hint: write the layers yourself from nn.Linear, nn.Conv2d, activation "
                    "functions and nn.Sequential."]
    return None


def check_trained_model(exercise: str, make_model: Callable, name: str, args: tuple, *,
                        probe: torch.Tensor, probe_text: str, out_shape: tuple, shape_hint: str,
                        train: Callable, bar: float, score_text: Callable[[float], str],
                        requirements: Sequence[Callable] = (),
                        below_bar: Optional[Callable] = None,
                        after_training: Sequence[Callable] = (),
                        success: Optional[Callable] = None, higher_is_better: bool = True,
                        forbid: Sequence = (), refuse_classes: Sequence[type] = (),
                        watch_training: bool = True, strict: Optional[bool] = None,
                        seed: int = 0, evaluation: Optional[Evaluation] = None) -> CheckResult:
    """The shared pattern of every "change the model" exercise.

    1. ``make_model(*args)`` is called (seeded) and must return an ``nn.Module``;
    2. ``model(probe)`` must give an output of ``out_shape``;
    3. each of ``requirements(model)`` returns ``None`` or the feedback lines of what the
       exercise asks for and the model lacks (its architecture, a parameter budget, ...);
    4. ``train(model)`` trains it with the check's fixed recipe and returns its score;
       the score must reach ``bar``. ``below_bar(model, score)`` gives the hint lines then;
    5. each of ``after_training(model)`` returns ``None`` or the feedback lines of what the
       trained model does wrong (e.g. it does not use the part the exercise is about).
    The implementations in ``forbid`` are refused throughout, whenever the learner's code
    (the factory, the model's own methods) leads to them (see :class:`Guard`), and a model
    that is or holds one of ``refuse_classes`` anywhere (see :func:`held_objects`: the
    course's model of the piece the exercise asks for, wrapped, hidden in a plain
    attribute or built lazily) is refused, and so is running one of their ``forward``
    methods from the learner's code (probes) or holding one after training. Whenever the
    exercise forbids anything, the model's own code is traced throughout (probe,
    training, after-training probes): a forbidden function called lazily inside
    ``forward`` is refused like one in the factory. ``watch_training`` is kept for
    callers; the training is traced either way.

    With an ``evaluation`` (see :class:`Evaluation`), ``train(model)`` only trains, and the
    score is ``evaluation.score`` of the model's outputs on evaluation inputs drawn at
    check time. Under the grader, steps 1 to 5 then run in the answer's sandbox, which
    sends back only the outputs on inputs without their labels; the judge draws the
    inputs, keeps the labels and computes the score, the bar and the verdict (``success``
    and ``below_bar`` receive a :class:`ModelSummary` there, not the model).
    """
    if isinstance(make_model, AnswerElsewhere):
        if evaluation is None:
            raise RunInAnswerProcess(exercise)
        return _judge_trained_model(exercise, make_model, evaluation, bar=bar,
                                    score_text=score_text, below_bar=below_bar,
                                    success=success, higher_is_better=higher_is_better,
                                    strict=strict)
    model, problem = call_factory(exercise, make_model, name, args, strict, seed, forbid)
    if problem is not None:
        return problem
    lines = course_model_inside(model, refuse_classes)
    if lines:
        result = failed(exercise, lines, strict=False)
        result.refused = lines[0]
        return finish(result, strict)
    # while the check trains and probes the model, the learner's code (its forward) is
    # traced only when the exercise forbids something: tracing slows training down
    watched = list(forbid) + [(cls, "forward") for cls in refuse_classes]
    targets = _targets(watched)
    watch = (lambda: Guard(targets, checks=False, anywhere=False)) if watched else _no_guard
    # the training is traced when the exercise forbids something the model could call;
    # the course's model is looked for again after training (built lazily and kept)
    train_watch = watch if forbid else _no_guard
    try:
        with watch():
            problem = check_output_shape(exercise, model, probe, out_shape, probe_text,
                                         shape_hint, strict)
            if problem is not None:
                return problem
            for requirement in requirements:
                lines = requirement(model)
                if lines:
                    return failed(exercise, lines, strict)
        with train_watch():
            torch.manual_seed(seed)
            score = train(model)
            if evaluation is not None:
                given = _ANSWER_SIDE[-1] if _ANSWER_SIDE else None
                inputs, private = given if given is not None else evaluation.inputs(None)
                with torch.no_grad():
                    outputs = evaluation.predict(model.eval(), inputs)
                if given is not None:  # the answer's side under the grader: report, stop
                    raise _TrainedReport(_report(model, probe, outputs, watch,
                                                 after_training, refuse_classes))
                score = evaluation.score(outputs, private)
            score = float(score)
    except UsedForbidden as exc:
        return used_forbidden(exercise, name, exc.name, strict)
    except (CheckFailed, _TrainedReport):
        raise
    except Exception as exc:
        return failed(exercise, [f"training the model raised {_short_error(exc)}{_where(exc)}",
                                 f"hint: {shape_hint}"], strict)
    lines = course_model_inside(model, refuse_classes)
    if lines:
        result = failed(exercise, lines, strict=False)
        result.refused = lines[0]
        return finish(result, strict)
    good = score >= bar if higher_is_better else score <= bar
    if not good:
        lines = [f"after training with the check's recipe: {score_text(score)}; "
                 f"the bar is {score_text(bar)}."]
        return failed(exercise, lines + (below_bar(model, score) if below_bar else []), strict)
    try:
        with watch():
            for requirement in after_training:
                lines = requirement(model)
                if lines:
                    return failed(exercise, lines, strict)
    except UsedForbidden as exc:
        return used_forbidden(exercise, name, exc.name, strict)
    return passed(exercise, success(model, score) if success else
                  f"{score_text(score)} (bar {score_text(bar)}).", strict)


# --- Model exercises under the grader: trained where the answer runs, scored elsewhere ----

@dataclass
class Evaluation:
    """How a trained model's score is computed, split so that the process that built and
    trained the learner's model never sees the labels it is scored against.

    ``inputs(g)`` returns ``(inputs, private)``: a dictionary of tensors the model is run
    on and what only the scorer sees (their labels); ``g`` is ``None`` in a notebook (the
    chapter's own evaluation data) and, under the grader, a generator seeded by the judge
    at check time (inputs that are not the course's shipped data, so that no lookup in
    it finds their labels);
    ``predict(model, inputs)`` returns a dictionary of tensors (the model's outputs; it
    runs where the model is, under ``torch.no_grad()`` and in eval mode);
    ``score(outputs, private)`` returns the number compared with the bar."""

    inputs: Callable
    predict: Callable
    score: Callable


def accuracy_evaluation(data: Callable) -> Evaluation:
    """The :class:`Evaluation` of a classifier scored by accuracy: ``data(g)`` returns
    ``(X, y)``, the evaluation inputs and their labels (``g`` as in
    :class:`Evaluation`); the model's logits ``(..., classes)`` on ``X`` are compared with
    ``y`` ``(...)`` by their arg-max."""
    def inputs(g):
        X, y = data(g)
        return {"x": X}, y

    def predict(model, given):
        return {"logits": model(given["x"])}

    def score(outputs, labels):
        logits = outputs.get("logits") if isinstance(outputs, dict) else None
        if not isinstance(logits, torch.Tensor) or logits.dim() != labels.dim() + 1 or \
                tuple(logits.shape[:-1]) != tuple(labels.shape):
            raise ValueError(f"expected logits of shape {tuple(labels.shape)} + (classes,), "
                             f"received {describe(logits)}")
        return (logits.double().argmax(dim=-1) == labels).double().mean().item()

    return Evaluation(inputs, predict, score)


def drawn_seed(g: Optional[torch.Generator], default: int) -> int:
    """``default`` in a notebook (``g`` is None), else a seed drawn with ``g``."""
    return default if g is None else int(torch.randint(2 ** 31 - 1, (1,), generator=g))


@dataclass
class ModelSummary:
    """What the judge knows about a model trained in the answer's process: how many
    numbers it stores or computes with (see :func:`model_numbers`)."""

    numbers: int


#: the evaluation inputs the judge sent, set by the grader's sandbox while it runs a model
#: exercise's check on the answer's side (empty in a notebook)
_ANSWER_SIDE: list = []


class _TrainedReport(BaseException):
    """Ends a model check on the answer's side: what the judge needs, as plain data."""

    def __init__(self, report: dict):
        super().__init__("trained")
        self.report = report


def _report(model, probe, outputs, watch, after_training, refuse_classes=()) -> dict:
    after = course_model_inside(model, refuse_classes)  # held after training
    try:
        with watch():
            for requirement in () if after else after_training:
                lines = requirement(model)
                if lines:
                    after = [str(line) for line in lines]
                    break
    except UsedForbidden as exc:
        after = [f"refused: {exc.name}"]
    return {"outputs": outputs, "numbers": model_numbers(model, probe), "after": after}


def _judge_trained_model(exercise, answer, evaluation: Evaluation, *, bar, score_text,
                         below_bar, success, higher_is_better, strict) -> CheckResult:
    inputs, private = evaluation.inputs(fresh_generator())
    report = answer.train_elsewhere(exercise, inputs)
    if report.get("stage") != "trained":
        status = TODO if report.get("status") == TODO else FAIL
        result = CheckResult(exercise, status, [str(x) for x in report.get("lines") or []
                                                ] or ["the check did not finish."], 0, 1)
        result.refused = report.get("refused") if isinstance(report.get("refused"), str) \
            else None
        return finish(result, strict)
    numbers = report.get("numbers")
    summary = ModelSummary(numbers if isinstance(numbers, int) else 0)
    try:
        score = float(evaluation.score(report.get("outputs"), private))
        if math.isnan(score):
            raise ValueError("the score is not a number")
    except Exception as exc:  # noqa: BLE001 - malformed outputs are the answer's
        return failed(exercise, ["the trained model's outputs on the check's evaluation "
                                 f"inputs could not be scored ({_short_error(exc)}): the "
                                 "model must return what the exercise asks for."], strict)
    good = score >= bar if higher_is_better else score <= bar
    if not good:
        lines = [f"after training with the check's recipe: {score_text(score)}; "
                 f"the bar is {score_text(bar)}."]
        return failed(exercise, lines + (below_bar(summary, score) if below_bar else []),
                      strict)
    after = report.get("after")
    if isinstance(after, list) and after:
        return failed(exercise, [str(x) for x in after], strict)
    return passed(exercise, success(summary, score) if success else
                  f"{score_text(score)} (bar {score_text(bar)}).", strict)


def model_numbers(model, probe: Optional[torch.Tensor] = None) -> int:
    """Every number a model stores or computes with, for a parameter budget: its
    parameters and buffers, every tensor, NumPy array and list of numbers reachable from
    its modules (attributes, lists, dictionaries, closures, the globals its methods
    name), and, when ``probe`` is given, every tensor that ``model(probe)`` computes with
    that is neither the input nor made by an operation inside that call (a table loaded
    or built from a Python list inside ``forward``). A :class:`ModelSummary` gives its
    count."""
    if isinstance(model, ModelSummary):
        return model.numbers
    seen: dict = {}
    if probe is not None:  # first: a table the model fills lazily is then there to count
        try:
            _used_in_forward(model, probe, seen)
        except Exception:  # noqa: BLE001 - a model that fails here fails its shape check
            pass
    _reachable(model, seen, set(), 0)
    return int(sum(seen.values()))


def _storage_key(t: torch.Tensor):
    try:
        return ("t", t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
    except Exception:  # noqa: BLE001 - a tensor without storage
        return ("t", id(t), 0)


def _tensor_numbers(t: torch.Tensor) -> int:
    try:
        return t.untyped_storage().nbytes() // max(1, t.element_size())
    except Exception:  # noqa: BLE001
        return t.numel()


def _reachable(obj, seen: dict, visited: set, depth: int) -> None:
    import types

    import torch.nn as nn

    if depth > 8 or id(obj) in visited:
        return
    visited.add(id(obj))
    if isinstance(obj, torch.Tensor):
        seen[_storage_key(obj)] = _tensor_numbers(obj)
        return
    kind = type(obj).__module__
    if kind == "numpy" and hasattr(obj, "nbytes") and hasattr(obj, "itemsize"):
        seen[("n", id(obj))] = int(obj.nbytes) // max(1, int(obj.itemsize))
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        numbers = sum(1 for v in obj if isinstance(v, (int, float)))
        if numbers:
            seen[("l", id(obj))] = numbers
        for v in obj:
            if not isinstance(v, (int, float, str, bytes)):
                _reachable(v, seen, visited, depth + 1)
        return
    if isinstance(obj, dict):  # a lookup table: its keys are data too
        numbers = sum(1 for v in obj.values() if isinstance(v, (int, float)))
        if numbers > 16:
            seen[("d", id(obj))] = numbers
        for v in list(obj.values()) + [k for k in obj if not isinstance(k, str)]:
            if not isinstance(v, (int, float, str)):
                _reachable(v, seen, visited, depth + 1)
        return
    if isinstance(obj, (bytes, bytearray)):
        if len(obj) > 64:
            seen[("b", id(obj))] = len(obj)
        return
    if isinstance(obj, types.MethodType):
        _reachable(obj.__func__, seen, visited, depth + 1)
        return
    if isinstance(obj, types.FunctionType):
        if _is_library_code(obj.__code__):
            return
        for cell in obj.__closure__ or ():
            try:
                _reachable(cell.cell_contents, seen, visited, depth + 1)
            except ValueError:
                pass
        _reachable(obj.__defaults__ or (), seen, visited, depth + 1)
        for name in _names_used(obj.__code__):
            value = obj.__globals__.get(name)
            if value is not None and not isinstance(value, (types.ModuleType, type)):
                _reachable(value, seen, visited, depth + 1)
        return
    if isinstance(obj, nn.Module):
        for module in obj.modules():
            for value in list(vars(module).values()):
                _reachable(value, seen, visited, depth + 1)
            for klass in type(module).__mro__:
                if klass.__module__.startswith(("torch", "builtins")):
                    continue
                for key, value in list(vars(klass).items()):
                    if not key.startswith("__") or key in ("__call__", "__init__"):
                        _reachable(value, seen, visited, depth + 1)
        return
    if hasattr(obj, "__dict__") and not isinstance(obj, type) and \
            not kind.startswith(("torch", "builtins")):
        _reachable(vars(obj), seen, visited, depth + 1)


def _names_used(code) -> list:
    names = list(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names += _names_used(const)
    return names


def _used_in_forward(model, probe: torch.Tensor, seen: dict) -> None:
    from torch.utils._python_dispatch import TorchDispatchMode

    made: set = set()
    used: dict = {}
    x = probe.clone()
    inputs = {_storage_key(x)}

    def walk(value, into):
        if isinstance(value, torch.Tensor):
            into(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, into)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v, into)

    def note_used(t):
        key = _storage_key(t)
        if key not in made and key not in inputs:
            used[key] = _tensor_numbers(t)

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            walk(args, note_used)
            walk(kwargs or {}, note_used)
            out = func(*args, **(kwargs or {}))
            walk(out, lambda t: made.add(_storage_key(t)))
            return out

    with torch.no_grad(), Count():
        model(x)
    seen.update(used)
