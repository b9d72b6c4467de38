"""The grader's side inside a grading kernel.

The grader inserts three kinds of cells into the notebook it executes:

- a *preamble*, first of all: ``Grader(token, chapters, reference_dirs)``. It imports the
  modules the checks use, remembers their functions (an integrity snapshot), and
  installs an audit hook that notes reads of the reference solutions and started
  subprocesses. Audit hooks cannot be removed from Python code.
- one *check cell* per exercise: ``grader(token).check(...)``. It undoes replaced functions
  found in the snapshot (``torch.isclose = ...``), re-imports ``fromscratch.checks`` fresh
  (so redefined or monkeypatched checks do not count), runs the pristine check with
  ``strict=False`` on the learner's namespace and publishes the CheckResult as a display
  output of a private MIME type, tagged with the run's random token;
- a *final cell*, ``grader(token).finish()``, which says the notebook ran to the end.

The grader reads results only from its own cells' outputs and only with the right token,
so printing a fake result in a learner's cell, or redefining a check, earns nothing.
This is protection against the cheats a learner can type into a cell, not a security
boundary: code that deliberately attacks this module from inside the same process (via
``gc``, frame inspection or C-level patches) is out of reach of any in-process check.
"""

from __future__ import annotations

import builtins
import importlib
import math
import os
import sys
import types

MIME = "application/vnd.fromscratch.grade+json"
_GRADERS: dict = {}

# builtins that IPython/ipykernel rebind on their own while cells run
_BUILTINS_SKIPPED = {"input", "raw_input", "getpass", "exit", "quit", "get_ipython",
                     "display", "help", "copyright", "credits", "license"}
_SUBPROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
                      "os.spawn", "os.fork", "os.forkpty"}


def grader(token: str) -> Grader:
    """The grader of this run; a wrong token raises KeyError."""
    return _GRADERS[token]


class Grader:
    """Everything the grader keeps inside the kernel for one notebook."""

    def __init__(self, token: str, chapters: list, reference_dirs: list):
        self.token = token
        self.chapters = list(chapters)
        self.reference_dirs = [os.path.realpath(d) + os.sep for d in reference_dirs]
        self.reference_reads: list = []
        self.subprocesses: list = []
        self.restored: list = []
        _GRADERS[token] = self
        from IPython import get_ipython

        shell = get_ipython()
        self._user_ns = shell.user_ns
        self._publish = shell.display_pub.publish
        import fromscratch.data  # noqa: F401  (the checks import these lazily)
        import fromscratch.training  # noqa: F401

        for chapter in self.chapters:
            importlib.import_module(f"fromscratch.checks.{chapter}")
        import fromscratch

        self._package_path = list(fromscratch.__path__)
        self._snapshot = _snapshot()
        sys.addaudithook(self._audit)
        self._emit({"kind": "start"})

    # -- audit hook ------------------------------------------------------------
    def _audit(self, event: str, args: tuple) -> None:
        if event == "open":
            path = args[0] if args else None
            if isinstance(path, (str, bytes, os.PathLike)):
                try:
                    full = os.path.realpath(os.fsdecode(path))
                except Exception:  # noqa: BLE001 - an audit hook must never raise
                    return
                if any(full.startswith(d) for d in self.reference_dirs):
                    name = os.path.basename(full)
                    if name not in self.reference_reads:
                        self.reference_reads.append(name)
        elif event in _SUBPROCESS_EVENTS:
            what = repr(args[0])[:80] if args else event
            if len(self.subprocesses) < 20:
                self.subprocesses.append(f"{event}: {what}")

    # -- cells -----------------------------------------------------------------
    def check(self, exercise: str, chapter: str, body: str, call: str) -> None:
        """Run one pristine check on the learner's namespace and publish its result."""
        restored = _restore(self._snapshot)
        self.restored += [r for r in restored if r not in self.restored]
        core, checks = _fresh_checks(chapter, self._package_path)
        ns = self._user_ns
        try:
            exec(compile(body, f"<{exercise} check>", "exec"), ns)
            result = eval(compile(call, f"<{exercise} check>", "eval"), ns)
        except NameError as exc:
            result = core.failed(exercise, [
                f"{exc}: the exercise's code cell is missing, was renamed or did not run.",
                "hint: keep the function name from the exercise, and run your notebook from "
                "the top (Restart & Run All) before submitting."], strict=False)
        except BaseException as exc:  # noqa: BLE001 - the learner's code may raise anything
            result = core.failed(exercise, [
                f"the check stopped with {type(exc).__name__}: {str(exc)[:300]}"], strict=False)
        if not isinstance(result, core.CheckResult) or result.exercise != exercise:
            result = core.failed(exercise, ["the check did not return its result "
                                            f"(received {type(result).__name__})."], strict=False)
        self._emit({"kind": "check", "exercise": exercise, "result": result.to_dict(),
                    "restored": restored})

    def finish(self) -> None:
        """The last cell: the notebook ran to its end."""
        self.restored += [r for r in _restore(self._snapshot) if r not in self.restored]
        self._emit({"kind": "end"})

    def _emit(self, payload: dict) -> None:
        payload = dict(payload, token=self.token, reference_reads=list(self.reference_reads),
                       subprocesses=list(self.subprocesses), restored_so_far=list(self.restored))
        self._publish({MIME: payload, "text/plain": f"[grader: {payload['kind']}]"})


# -- integrity snapshot -----------------------------------------------------------------

def _watched() -> dict:
    """Namespaces whose functions a check relies on, by a printable name."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    found = {"builtins": builtins, "math": math, "torch": torch, "torch.nn": nn,
             "torch.nn.functional": F, "torch.Tensor": torch.Tensor,
             "torch.nn.Module": nn.Module, "importlib": importlib}
    for name, module in sorted(sys.modules.items()):
        if (name.startswith("fromscratch.") and isinstance(module, types.ModuleType)
                and not name.startswith("fromscratch.checks")):
            found[name] = module
    return found


def _entries(name: str, space) -> dict:
    out = {}
    for key, value in list(vars(space).items()):
        if name == "builtins":
            if key in _BUILTINS_SKIPPED or (key.startswith("_") and key not in
                                            ("__import__", "__build_class__")):
                continue
        elif isinstance(space, types.ModuleType) and key.startswith("__"):
            continue
        if isinstance(value, types.ModuleType) or not callable(value):
            continue  # module-level data may change legitimately (caches)
        code = getattr(value, "__code__", None) if isinstance(value, types.FunctionType) else None
        defaults = getattr(value, "__defaults__", None) if code is not None else None
        out[key] = (value, code, defaults)
    return out


def _snapshot() -> dict:
    return {name: (space, _entries(name, space)) for name, space in _watched().items()}


def _library_wrapper(new, old) -> bool:
    """True when ``new`` is a library's own wrapper of ``old`` (torch wraps a few functions
    the first time some of its modules are imported, e.g. ``torch.manual_seed``)."""
    import torch

    code = getattr(new, "__code__", None)
    if code is None or not code.co_filename.startswith(os.path.dirname(torch.__file__)):
        return False
    seen = 0
    while new is not None and seen < 10:
        if new is old:
            return True
        new, seen = getattr(new, "__wrapped__", None), seen + 1
    return False


def _restore(snapshot: dict) -> list:
    """Put back every snapshotted object a learner replaced; return their names."""
    changed = []
    for name, (space, entries) in snapshot.items():
        current = vars(space)
        for key, (value, code, defaults) in list(entries.items()):
            now = current.get(key, _MISSING)
            if now is value and (code is None or (value.__code__ is code
                                                  and value.__defaults__ == defaults)):
                continue
            if now is not _MISSING and _library_wrapper(now, value):
                entries[key] = (now, getattr(now, "__code__", None),
                                getattr(now, "__defaults__", None))
                continue
            changed.append(f"{name}.{key}")
            try:
                if code is not None and now is value:
                    value.__code__, value.__defaults__ = code, defaults
                else:
                    setattr(space, key, value)
            except (AttributeError, TypeError):
                pass
    return changed


_MISSING = object()


def _fresh_checks(chapter: str, package_path: list):
    """Import ``fromscratch.checks`` and the chapter's checks anew, from their files."""
    import fromscratch

    fromscratch.__path__[:] = package_path  # no checks from a folder the learner added
    for name in [n for n in sys.modules if n == "fromscratch.checks" or
                 n.startswith("fromscratch.checks.")]:
        del sys.modules[name]
    core = importlib.import_module("fromscratch.checks.core")
    return core, importlib.import_module(f"fromscratch.checks.{chapter}")
