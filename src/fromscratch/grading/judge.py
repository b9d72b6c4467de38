"""The judge: decides every exercise in a process where no answer code ever runs.

``python -I -m fromscratch.grading.judge JOB_FD EVENTS_FD REQUESTS_FD OUT_FD [STATE_FD]``,
started by the grader beside each submission's sandbox (outside it). It imports the
course's checks, builds the assignment's set-up namespace (from the saved set-up state
or by running the pristine set-up cells), and for each exercise, once the sandbox says
the answer cell ran (``EVENTS_FD``), runs the **pristine check cell here**, with an
:class:`Answer` in place of each function the answer cell defined. Every call the check
makes to the learner's code is sent to the sandbox (``REQUESTS_FD``), run there, and
comes back as plain data (:mod:`fromscratch.grading.wire`): never pickled, never executed.
So the references, the fresh inputs (drawn here from ``os.urandom`` at check time), the
comparisons, the diagnoses and the verdict all live in this process; an answer can
return wrong data, never change how the data is judged. Model exercises with an
:class:`~fromscratch.checks.core.Evaluation` are trained in the sandbox and only their
outputs on this process's evaluation inputs come back; the labels stay here.

Data goes to the sandbox pickled (this process's own objects: arguments, models of the
set-up); nothing from the sandbox is ever unpickled. Results go to the grader as JSON
lines on ``OUT_FD``, one ``result`` event per exercise, in the form
:func:`fromscratch.grading.grade._score` reads.
"""

from __future__ import annotations

import base64
import builtins
import copyreg
import importlib
import io
import json
import os
import pickle
import signal
import sys
import time
import types

from ..checks.core import AnswerElsewhere

_STATUSES = ("passed", "failed", "not attempted")


class AnswerGone(BaseException):
    """The answer's process ended (time limit, crash) while the check was calling it."""

    def __init__(self, outcome: str):
        super().__init__(outcome)
        self.outcome = outcome


class _Link:
    """The judge's end of the sandbox: requests out, events in."""

    def __init__(self, events_fd: int, requests_fd: int):
        self.events = os.fdopen(events_fd, "rb")
        self.requests = requests_fd

    def event(self) -> dict | None:
        while True:
            line = self.events.readline()
            if not line:
                return None
            try:
                event = json.loads(line.decode("utf-8"))
            except ValueError:
                continue
            if isinstance(event, dict):
                return event

    def send(self, message: dict) -> None:
        data = (json.dumps(message) + "\n").encode("utf-8")
        while data:
            data = data[os.write(self.requests, data):]

    def ask(self, exercise: str, message: dict) -> dict:
        """Send one request and wait for its reply (the sandbox answers in order)."""
        self.send(message)
        while True:
            event = self.event()
            if event is None:
                raise AnswerGone("sandbox-gone")
            if event.get("event") != "reply" or event.get("exercise") != exercise:
                continue
            if event.get("gone"):
                raise AnswerGone(str(event.get("gone"))[:40])
            reply = event.get("reply")
            return reply if isinstance(reply, dict) else {}


def _remote_error(type_name: str) -> type:
    """An exception class named like the answer's (only its name: the check's feedback
    says "raised TypeError: ..."), never the class itself."""
    name = type_name if isinstance(type_name, str) and type_name.isidentifier() else "Error"
    return type(name[:80], (Exception,), {"__module__": "answer"})


class _Pickler(pickle.Pickler):
    """Pickles the judge's arguments for the sandbox: an :class:`Answer` by its name,
    modules by their import name."""

    def persistent_id(self, obj):
        if isinstance(obj, Answer):
            return ("answer", obj.__name__)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        return NotImplemented


def _dumps(value) -> str:
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = copyreg.dispatch_table.copy()
    pickler.dump(value)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _forbid_spec(forbid: list) -> list:
    """The forbidden implementations in a form the sandbox can rebuild (each one that
    cannot be named is left out: the answer's process then does not refuse it)."""
    import torch

    out = []
    for target in forbid:
        if isinstance(target, tuple) and len(target) == 2 and target[0] is torch.ops.aten:
            target = f"aten::{target[1]}"
        try:
            _dumps(target)
        except Exception:  # noqa: BLE001 - a lambda or a local function
            continue
        out.append(target)
    return out


class Answer(AnswerElsewhere):
    """A function the answer cell defined, living in the sandbox (see the module doc)."""

    def __init__(self, name: str, exercise: str, link: _Link):
        self.__name__ = self.__qualname__ = name
        self._exercise, self._link = exercise, link

    def __repr__(self) -> str:
        return f"<function {self.__name__}>"

    def call_elsewhere(self, args: tuple, kwargs: dict, forbid: list):
        import torch

        from . import wire

        payload = {"name": self.__name__, "args": args, "kwargs": kwargs,
                   "forbid": _forbid_spec(forbid), "rng": torch.get_rng_state()}
        try:
            data = _dumps(payload)
        except Exception:  # noqa: BLE001 - an argument that cannot be sent (a local class)
            from ..checks.core import RunInAnswerProcess

            raise RunInAnswerProcess(self._exercise) from None
        reply = self._link.ask(self._exercise, {"op": "call", "payload": data})
        if isinstance(reply.get("refused"), str):
            from ..checks.core import UsedForbidden

            raise UsedForbidden(reply["refused"][:300])
        raised = reply.get("raised")
        if isinstance(raised, dict):
            message = str(raised.get("message", ""))[:300]
            error = NotImplementedError(message) if raised.get("type") == \
                "NotImplementedError" else _remote_error(raised.get("type"))(message)
            if "stub" in raised:  # as the check would tell in the answer's process
                error.answer_not_attempted = raised.get("stub") is True
            if isinstance(raised.get("where"), str):
                error.answer_where = raised["where"][:300]
            raise error
        try:
            value = wire.decode(reply.get("value"))
            flat = wire.tensors_in((args, kwargs))
            changed = reply.get("changed") if isinstance(reply.get("changed"), dict) else {}
            for key, data in list(changed.items())[:len(flat)]:
                index = int(key)
                if not 0 <= index < len(flat):
                    raise wire.WireError("a changed argument that was not given")
                _write_back(flat[index], wire.decode(data))
            grads = reply.get("grads")
            if isinstance(value, torch.Tensor) and isinstance(grads, list):
                value = _with_gradient(value, flat, [None if g is None else wire.decode(g)
                                                     for g in grads])
            elif isinstance(value, torch.Tensor) and isinstance(reply.get("value"), dict) \
                    and reply["value"].get("requires_grad") is True \
                    and value.dtype.is_floating_point:
                value = value.requires_grad_()
        except (wire.WireError, ValueError, TypeError, RuntimeError) as exc:
            raise _remote_error("MalformedAnswerData")(
                f"what the answer returned is not well-formed data ({exc})") from None
        return value

    def train_elsewhere(self, exercise: str, inputs: dict) -> dict:
        from . import wire

        reply = self._link.ask(self._exercise, {"op": "model",
                                                "payload": _dumps({"inputs": inputs})})
        if reply.get("stage") == "trained":
            try:
                outputs = wire.decode(reply.get("outputs"))
            except wire.WireError as exc:
                return {"stage": "failed", "lines": [
                    f"the trained model's outputs are not well-formed data ({exc})."]}
            numbers = reply.get("numbers")
            after = reply.get("after")
            return {"stage": "trained", "outputs": outputs,
                    "numbers": numbers if isinstance(numbers, int) else 0,
                    "after": [str(x)[:1000] for x in after[:10]] if isinstance(after, list)
                    else None}
        if isinstance(reply.get("raised"), dict):
            raised = reply["raised"]
            return {"stage": "failed", "lines": [
                f"the check stopped with {str(raised.get('type'))[:80]}: "
                f"{str(raised.get('message'))[:300]}"]}
        lines = reply.get("lines") if isinstance(reply.get("lines"), list) else []
        return {"stage": "failed", "status": reply.get("status") if reply.get("status") in
                _STATUSES else "failed", "lines": [str(x)[:2000] for x in lines[:20]],
                "refused": str(reply["refused"])[:300] if isinstance(reply.get("refused"),
                                                                     str) else None}

    def __call__(self, *args, **kwargs):
        return self.call_elsewhere(args, kwargs, [])


def _write_back(target, after) -> None:
    """Change the judge's argument as the answer changed its copy (so the check's own
    "changed its input" test sees it)."""
    import torch

    if not isinstance(after, torch.Tensor):
        raise ValueError("a changed argument that is not a tensor")
    with torch.no_grad():
        if tuple(after.shape) == tuple(target.shape):
            target.copy_(after.to(target.dtype))
        else:
            target.data = after.to(target.dtype)


def _with_gradient(value, flat: list, grads: list):
    """``value`` with the gradient the answer's loss has with respect to the arguments
    that need one: value + sum_i <g_i, x_i - x_i.detach()>."""
    import torch

    leaves = [t for t in flat if t.requires_grad and t.is_leaf]
    if len(grads) != len(leaves):
        raise ValueError("gradients for other arguments than those given")
    out = value.detach().to(torch.get_default_dtype()
                            if not value.dtype.is_floating_point else value.dtype)
    terms = [((leaf - leaf.detach()) * g.to(leaf.dtype)).sum()
             for leaf, g in zip(leaves, grads) if g is not None
             and tuple(g.shape) == tuple(leaf.shape)]
    if not terms:
        return out.requires_grad_()
    return out + sum(terms).to(out.dtype).reshape(out.shape)


class _Opaque:
    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


# -- the main loop ------------------------------------------------------------------------

def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    job_fd, events_fd, requests_fd, out_fd = (int(a) for a in argv[:4])
    state_fd = int(argv[4]) if len(argv) > 4 else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.dont_write_bytecode = True
    with os.fdopen(job_fd, "rb") as fh:
        job = json.loads(fh.read().decode("utf-8"))
    out = os.fdopen(out_fd, "w", encoding="utf-8", buffering=1)

    def emit(event: dict) -> None:
        out.write(json.dumps(event) + "\n")
        out.flush()

    link = _Link(events_fd, requests_fd)
    setup_ns = _prepare(job, state_fd)
    exercises = {e["id"]: e for e in job["exercises"]}
    answers: dict = {}
    while True:
        event = link.event()
        if event is None:
            break
        kind = event.get("event")
        if kind in ("ready", "setup-error", "state"):
            emit(event)
        elif kind == "answer" and event.get("exercise") in exercises:
            exercise = exercises[event["exercise"]]
            answers[exercise["id"]] = event
            began = time.monotonic()
            result = None
            if event.get("outcome") == "ok":
                result = _judge(exercise, event, setup_ns, link)
            link.send({"op": "done"})
            answers[exercise["id"]] = (event, result, began)
        elif kind == "exercise-end" and event.get("exercise") in answers:
            ex_id = event["exercise"]
            answer, result, began = answers.pop(ex_id)
            emit(_result_event(ex_id, answer, result, event, time.monotonic() - began))
        elif kind == "end":
            emit({"event": "end"})
            break
    out.close()
    os._exit(0)


def _prepare(job: dict, state_fd) -> dict:
    """The set-up namespace: loaded from the saved state (written before any submission
    was opened, by a sandbox that ran only the assignment's pristine set-up cells) or made
    here by running those cells."""
    import torch

    torch.set_num_threads(1)
    import fromscratch.data  # noqa: F401
    import fromscratch.training  # noqa: F401

    for chapter in job["chapters"]:
        importlib.import_module(f"fromscratch.checks.{chapter}")
    ns = {"__name__": "__main__", "__builtins__": builtins}
    if state_fd is not None:
        from .checker import _load_state

        ns.update(_load_state(state_fd))
        return ns
    for setup in job["setup"]:
        try:
            exec(compile(setup["source"], f"<set-up of {setup['id']}>", "exec"), ns)
        except Exception:  # noqa: BLE001 - the sandbox reports the same error
            pass
    return ns


def _judge(exercise: dict, event: dict, setup_ns: dict, link: _Link):
    """Run the pristine check cell here; the answer's functions are :class:`Answer`s.
    Returns a CheckResult's data, or None when the answer's process ended meanwhile."""
    import torch

    from ..checks import core

    torch.manual_seed(0)
    ns = dict(setup_ns)
    for name, info in (event.get("defined") or {}).items():
        if name in setup_ns:
            continue  # the set-up's objects are the check's, not the answer's
        ns[name] = Answer(name, exercise["id"], link) if info.get("callable") \
            else _Opaque(info.get("repr") or f"<{name}>")
    try:
        exec(compile(exercise["body"], f"<{exercise['id']} check>", "exec"), ns)
        result = eval(compile(exercise["call"], f"<{exercise['id']} check>", "eval"), ns)
    except core.RunInAnswerProcess:
        return _check_in_answer_process(exercise, link)
    except AnswerGone as gone:
        return {"gone": gone.outcome}
    except NameError as exc:
        result = core.failed(exercise["id"], [
            f"{exc}: the exercise's answer cell is missing, renamed, or did not define it.",
            "hint: keep the function name from the exercise, and keep everything the answer "
            "needs (imports, helpers) in its own cell: grading runs each answer cell on its "
            "own."], strict=False)
    except BaseException as exc:  # noqa: BLE001
        result = core.failed(exercise["id"], [
            f"the check stopped with {type(exc).__name__}: {str(exc)[:300]}"], strict=False)
    if not isinstance(result, core.CheckResult):
        result = core.failed(exercise["id"], ["the check did not return its result "
                                              f"(received {type(result).__name__})."],
                             strict=False)
    return dict(result.to_dict(), decided="judge")


def _check_in_answer_process(exercise: dict, link: _Link):
    """A check that needs the learner's model object itself and has no
    :class:`~fromscratch.checks.core.Evaluation` yet: it runs in the answer's process, as
    it did before the judge existed, and its result is taken as reported."""
    try:
        reply = link.ask(exercise["id"], {"op": "check-here"})
    except AnswerGone as gone:
        return {"gone": gone.outcome}
    result = reply.get("result") if isinstance(reply.get("result"), dict) else None
    if result is None:
        raised = reply.get("raised") if isinstance(reply.get("raised"), dict) else {}
        return {"exercise": exercise["id"], "status": "failed", "decided": "answer process",
                "text": f"[FAIL] {exercise['id']}: the check stopped with "
                        f"{str(raised.get('type'))[:80]}: {str(raised.get('message'))[:300]}"}
    return dict(result, decided="answer process")


def _text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _result_event(ex_id: str, answer: dict, result, end: dict, seconds: float) -> dict:
    """The event the grader scores: the judge's verdict, with what the sandbox noticed."""
    outcome = str(end.get("outcome") or "ok")
    if str(answer.get("outcome") or "ok") != "ok":
        outcome = str(answer.get("outcome"))
    out = {"event": "result", "exercise": ex_id, "seconds": round(seconds, 2),
           "outcome": outcome[:40], "answer_ran": answer.get("answer_ran") is True,
           "answer_error": answer.get("answer_error")}
    for key in ("restored", "flags", "notes", "reference", "subprocesses", "warnings"):
        values = end.get(key) if isinstance(end.get(key), list) else []
        out[key] = [_text(v, 300) for v in values[:20]]
    if isinstance(result, dict) and result.get("gone"):
        out["outcome"] = str(result["gone"])[:40]
        result = None
    if outcome != "ok":
        result = None
    if isinstance(result, dict):
        status = result.get("status") if result.get("status") in _STATUSES else "failed"
        if result.get("exercise") != ex_id:
            status = "failed"
        out["result"] = {"status": status, "text": _text(result.get("text"), 20000),
                         "refused": _text(result.get("refused"), 300) or None}
        if result.get("decided") != "judge":
            out["notes"].append("decided in the answer's own process (this check needs the "
                                "trained model object)")
    return out


if __name__ == "__main__":
    main()
