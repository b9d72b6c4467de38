"""The program that runs one submission's answers inside its sandbox.

``python -I -m fromscratch.grading.checker JOB_FD EVENTS_FD`` (PID 1 of the sandbox, see
:mod:`fromscratch.grading.sandbox`). It reads the job (set-up cells, and per exercise the
learner's answer cell and the pristine check) from ``JOB_FD``, writes one JSON line per
event to ``EVENTS_FD`` (read by the judge, :mod:`fromscratch.grading.judge`, outside the
sandbox) and reads the judge's requests from the job's ``requests_fd``. It never runs
learner code itself, and it decides nothing:

1. it sets the resource limits, imports torch, the course package and the checks, and runs
   the assignment's pristine set-up cells (or loads their saved result);
2. for each exercise it forks a child that runs **only that exercise's answer cell**,
   puts back every function the checks rely on that the answer replaced (and reports
   it), and then serves the judge's requests: each call of the answer's function the
   judge's check makes (run under the check's guard), a model exercise's training up to
   the model's outputs on the judge's inputs, or, for a check that needs the model
   object itself, the whole check. Every reply is plain data
   (:mod:`fromscratch.grading.wire`); this process passes requests and replies on with
   time and size limits. Afterwards every process in the sandbox but this one is killed
   and the work copy emptied, so the next exercise starts clean;
3. this process is not dumpable (no ``/proc/1/mem`` or ``/proc/1/fd`` for the children)
   and, as PID 1 of its namespace, cannot be killed from inside it.

What the child notices (replaced functions, classes of the course package changed,
writes outside the work copy, signals, ``gc``/``ctypes`` introspection) is reported with
the exercise's end event and makes the status ``tampered``; it is best effort, since it is
observed in the answer's own process. The verdicts are the judge's.
"""

from __future__ import annotations

import builtins
import importlib
import json
import math
import os
import select
import signal
import sys
import time
import types

_RESULT_LIMIT = 256 * 1024
_WALL_FACTOR = 2  # wall-clock backstop of a time limit counted in CPU seconds
_WORK_FOLDERS = ("/tmp", "/dev/shm")  # emptied after each exercise, with HOME
_STATUSES = ("passed", "failed", "not attempted")
_SUBPROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
                      "os.spawn", "os.fork", "os.forkpty"}
_WRITE_EVENTS = {"os.remove", "os.rmdir", "os.rename", "os.chmod", "os.chown", "os.truncate",
                 "os.symlink", "os.link", "os.mkdir", "shutil.rmtree", "os.utime"}
_INTROSPECTION_EVENTS = {"gc.get_objects", "gc.get_referrers", "gc.get_referents",
                         "ctypes.dlopen", "ctypes.dlsym", "ctypes.addressof",
                         "ctypes.cdata", "ctypes.string_at", "ctypes.wstring_at"}
# builtins that IPython or the interpreter rebind on their own
_BUILTINS_SKIPPED = {"input", "raw_input", "getpass", "exit", "quit", "get_ipython",
                     "display", "help", "copyright", "credits", "license", "_"}


# -- the parent (PID 1): never runs learner code ------------------------------------------

def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    job_fd, out_fd = int(argv[0]), int(argv[1])
    state_fd = int(argv[2]) if len(argv) > 2 else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.dont_write_bytecode = True  # -I ignores PYTHONDONTWRITEBYTECODE; the package is read-only
    _not_dumpable()
    with os.fdopen(job_fd, "rb") as fh:
        job = json.loads(fh.read().decode("utf-8"))
    _set_limits(job.get("limits", {}))
    out = os.fdopen(out_fd, "w", encoding="utf-8", buffering=1)

    def emit(event: dict) -> None:
        out.write(json.dumps(event) + "\n")
        out.flush()

    started = time.monotonic()
    ns = _prepare(job, emit, state_fd)
    if job.get("save_state"):
        emit({"event": "state", "saved": _save_state(ns, state_fd)})
        out.close()
        os._exit(0)
    emit({"event": "ready", "seconds": round(time.monotonic() - started, 2)})
    snapshot = _snapshot()
    import fromscratch

    package_path = list(fromscratch.__path__)
    requests = os.fdopen(job["requests_fd"], "rb") \
        if job.get("requests_fd") is not None else None
    for exercise in job["exercises"]:
        began = time.monotonic()
        result = _grade_exercise(exercise, ns, snapshot, package_path, job, out_fd, emit,
                                 requests)
        emit(dict(result, event="exercise-end", exercise=exercise["id"],
                  seconds=round(time.monotonic() - began, 2)))
        _end_stragglers()
        _empty_work_copy()
    emit({"event": "end"})
    out.close()
    os._exit(0)


def _not_dumpable() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    except (OSError, AttributeError):
        pass


def _set_limits(limits: dict) -> None:
    import resource

    def cap(kind, value):
        if value and value > 0:
            try:
                resource.setrlimit(kind, (value, value))
            except (ValueError, OSError):
                pass

    cap(resource.RLIMIT_AS, limits.get("memory_mb", 0) << 20)
    cap(resource.RLIMIT_NPROC, limits.get("processes", 0))
    cap(resource.RLIMIT_FSIZE, limits.get("file_mb", 0) << 20)
    cap(resource.RLIMIT_CPU, limits.get("cpu_seconds", 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _save_state(ns: dict, fd) -> bool:
    """Write the set-up's namespace to ``fd`` (pickled), so that every submission's sandbox
    loads it instead of running the set-up again; False if some value cannot be pickled."""
    import pickle

    state = {}
    for key, value in ns.items():
        if key.startswith("__"):
            continue
        if isinstance(value, types.ModuleType):
            state[key] = ("module", value.__name__)
            continue
        kind = value if isinstance(value, type) else type(value)
        if getattr(kind, "__module__", "") == "__main__" or \
                getattr(value, "__module__", None) == "__main__":
            return False
        try:
            state[key] = ("value", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:  # noqa: BLE001 - anything unpicklable: no cache
            return False
    data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    while data:
        data = data[os.write(fd, data):]
    return True


def _load_state(fd) -> dict:
    import pickle

    with os.fdopen(fd, "rb") as fh:
        state = pickle.loads(fh.read())
    ns = {}
    for key, (kind, value) in state.items():
        ns[key] = importlib.import_module(value) if kind == "module" else pickle.loads(value)
    return ns


def _prepare(job: dict, emit, state_fd=None) -> dict:
    """Imports and the pristine set-up cells (or their saved result); the namespace every
    answer starts from."""
    import torch

    torch.set_num_threads(1)
    import fromscratch.data  # noqa: F401  (the checks import these lazily)
    import fromscratch.training  # noqa: F401

    for chapter in job["chapters"]:
        importlib.import_module(f"fromscratch.checks.{chapter}")
    ns = {"__name__": "__main__", "__builtins__": builtins}
    if state_fd is not None and not job.get("save_state"):
        ns.update(_load_state(state_fd))
        return ns
    for setup in job["setup"]:
        try:
            exec(compile(setup["source"], f"<set-up of {setup['id']}>", "exec"), ns)
        except BaseException as exc:  # noqa: BLE001 - reported, the checks then fail
            emit({"event": "setup-error", "exercise": setup["id"],
                  "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    return ns


def _grade_exercise(exercise: dict, ns: dict, snapshot: dict, package_path: list, job: dict,
                    out_fd: int, emit, requests) -> dict:
    """One exercise: the child runs the answer cell, then serves the judge's calls (each
    request is passed to the child and its reply, as data, back to the judge) until the
    judge says ``done``; what the child noticed comes back as the exercise's end event."""
    read_end, write_end = os.pipe()  # child -> this process
    ask_read, ask_write = os.pipe()  # this process -> child
    pid = os.fork()
    if pid == 0:  # the child: learner code runs only here
        code = 0
        try:
            for fd in (out_fd, read_end, ask_write, requests.fileno()):
                os.close(fd)
            try:  # at its memory cap, the kernel ends learner code, not the checker
                with open("/proc/self/oom_score_adj", "w") as fh:
                    fh.write("1000")
            except OSError:
                pass
            if os.getpid() != 1:
                os.setsid()
            _child(exercise, ns, snapshot, package_path, _hide_fd(write_end), ask_read)
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os._exit(code)
    os.close(write_end)
    os.close(ask_read)
    link = _ChildLink(pid, read_end, ask_write)
    answer, outcome = link.receive(_Budget(job["cell_timeout"]), "answer")
    if answer is not None and answer.get("phase") != "answer-done":
        answer, outcome = None, outcome or "garbage"
    emit({"event": "answer", "exercise": exercise["id"], "answer_ran": answer is not None,
          "answer_error": _error_data((answer or {}).get("error")),
          "defined": _defined_data((answer or {}).get("defined")),
          "outcome": outcome or "ok"})
    deadline = None
    while True:
        line = requests.readline()
        if not line:
            outcome = outcome or "judge-gone"
            break
        try:
            op = json.loads(line.decode("utf-8")).get("op")
        except (ValueError, AttributeError):
            op = None
        if op == "done":
            break
        deadline = deadline or _Budget(job["check_timeout"])
        reply = None
        if outcome is None:
            link.send(line)
            reply, outcome = link.receive(deadline, "check")
            if reply is not None and reply.get("phase") != "reply":
                reply, outcome = None, "garbage"
        if outcome is None:
            emit({"event": "reply", "exercise": exercise["id"], "reply": reply.get("reply")})
        else:
            emit({"event": "reply", "exercise": exercise["id"], "gone": outcome})
    final = None
    if outcome is None:
        link.send(b'{"op": "done"}\n')
        final, late = link.receive(_Budget(10), "check")
        if final is None or final.get("phase") != "result":
            final, outcome = None, late or "garbage"
    outcome = link.close(outcome)
    out = {"outcome": outcome, "flags": [], "notes": []}
    for key in ("restored", "flags", "notes", "reference", "subprocesses", "warnings"):
        values = (final or {}).get(key)
        out[key] = [_text(v, 300) for v in values[:20]] if isinstance(values, list) else []
    return out


def _hide_fd(fd: int) -> int:
    """Move the pipe to the parent to a random, high descriptor number (a forger then has to
    search for it rather than write to the first few descriptors)."""
    import random
    import resource

    try:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        top = min(hard if hard > 0 else 4096, 1 << 20)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
        target = random.SystemRandom().randrange(max(64, top // 2), top)
        os.dup2(fd, target, inheritable=False)
        os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, top), hard))
        return target
    except (OSError, ValueError):
        return fd



class _ChildLink:
    """The private pipes to one exercise's child, with time and size limits."""

    def __init__(self, pid: int, read_fd: int, write_fd: int):
        self.pid, self.read_fd, self.write_fd = pid, read_fd, write_fd
        self.buffer = b""
        self.status = None

    def send(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self.write_fd, data):]
        except OSError:
            pass  # the child is gone: its reply says so

    def receive(self, deadline: _Budget, phase: str) -> tuple:
        """``(message, None)``, or ``(None, outcome)`` when the child ran out of time, died,
        sent more than any reply holds or something that is not a JSON object."""
        while b"\n" not in self.buffer:
            left = deadline.left()
            if left <= 0:
                return None, f"timeout-{phase}"
            ready, _, _ = select.select([self.read_fd], [], [], min(left, 0.5))
            if not ready:
                if self.status is None:
                    done, status = os.waitpid(self.pid, os.WNOHANG)
                    if done:
                        self.status = status
                continue
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                return None, self._ended()
            self.buffer += chunk
            if len(self.buffer) > _REPLY_LIMIT:
                return None, "oversized"
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            message = json.loads(line.decode("utf-8"))
        except ValueError:
            return None, "garbage"
        return (message, None) if isinstance(message, dict) else (None, "garbage")

    def _ended(self) -> str:
        status = self.status if self.status is not None else _wait(self.pid, 5.0)
        self.status = status
        if status is not None and os.WIFSIGNALED(status):
            return f"died-{os.WTERMSIG(status)}"
        if status is not None and os.WEXITSTATUS(status) != 0:
            return f"exit-{os.WEXITSTATUS(status)}"
        return "exit-0"

    def close(self, outcome):
        if self.status is None:
            self.status = _wait(self.pid, 2.0)  # killed after 2 s if it does not end
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        return outcome or "ok"


def _error_data(error) -> dict | None:
    if not isinstance(error, dict):
        return None
    line = error.get("line")
    return {"type": _text(error.get("type"), 100), "message": _text(error.get("message"), 300),
            "line": line if isinstance(line, int) and not isinstance(line, bool) else None,
            "code": _text(error.get("code"), 80)}


def _defined_data(defined) -> dict:
    """The names the answer cell defined: ``{name: {"callable": bool, "repr": text}}``."""
    out = {}
    if isinstance(defined, dict):
        for name, info in list(defined.items())[:200]:
            if isinstance(name, str) and name.isidentifier() and isinstance(info, dict):
                out[name] = {"callable": info.get("callable") is True,
                             "repr": _text(info.get("repr"), 200)}
    return out


_REPLY_LIMIT = 96 << 20


class _Budget:
    """The time an answer cell or a check may take: CPU seconds of the processes it runs
    (what a busy classmate's sandbox costs it is not counted), with a wall-clock backstop
    of ``_WALL_FACTOR`` times as long for code that waits without computing."""

    def __init__(self, seconds: float):
        self.seconds, self.cpu, self.wall = seconds, _graded_cpu(), time.monotonic()

    def left(self) -> float:
        return min(self.seconds - (_graded_cpu() - self.cpu),
                   self.seconds * _WALL_FACTOR - (time.monotonic() - self.wall))


def _graded_cpu() -> float:
    """CPU seconds used so far by every process but this one that runs learner code: all
    processes of the sandbox (this is PID 1 of its PID namespace), else this process's
    descendants; ended processes count through their parents (and this process)."""
    me = os.getpid()
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
                stats[int(name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
            except (OSError, IndexError, ValueError):
                continue
    if me != 1:  # no PID namespace of our own: only our descendants
        children: dict = {}
        for pid, (ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        mine, todo = set(), [me]
        while todo:
            for pid in children.get(todo.pop(), []):
                if pid not in mine:
                    mine.add(pid)
                    todo.append(pid)
        stats = {pid: v for pid, v in stats.items() if pid in mine}
    else:
        stats.pop(me, None)
    ticks = sum(v for _, v in stats.values())
    ended = os.times()
    return ticks / os.sysconf("SC_CLK_TCK") + ended.children_user + ended.children_system


def _wait(pid: int, seconds: float):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return status
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]
    except (ProcessLookupError, ChildProcessError):
        return None


def _text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _end_stragglers() -> None:
    """Kill every process the exercise left behind (PID 1 only: its whole namespace)."""
    if os.getpid() == 1:
        try:
            os.kill(-1, signal.SIGKILL)  # from PID 1: every process of the namespace but it
        except ProcessLookupError:
            pass
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            done, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not done:
            time.sleep(0.02)


def _empty_work_copy() -> None:
    for folder in (os.environ.get("HOME", ""), *_WORK_FOLDERS):
        if os.getpid() != 1 or not folder or not os.path.isdir(folder):
            continue
        empty_folder(folder)


def empty_folder(folder: str, budget: int = 1_000_000) -> None:
    """Delete everything in ``folder`` without recursion and without long paths (each
    folder is opened relative to its parent), so a tree nested thousands of levels deep
    is emptied like any other; never follows links; stops after ``budget`` steps."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        stack = [(os.open(folder, flags), None)]  # (open folder, its name in its parent)
    except OSError:
        return
    failed: set = set()  # folders that could not be emptied: not entered again
    while stack and budget > 0:
        budget -= 1
        fd, _ = stack[-1]
        descend = None
        try:
            with os.scandir(fd) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        except OSError:
            entries = []
        for name, is_dir in entries:
            budget -= 1
            if not is_dir:
                try:
                    os.unlink(name, dir_fd=fd)
                except OSError:
                    pass
            elif (fd, name) not in failed:
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError:
                    try:
                        os.chmod(name, 0o700, dir_fd=fd, follow_symlinks=False)
                    except (OSError, NotImplementedError):
                        pass
                    try:
                        descend = (os.open(name, flags, dir_fd=fd), name)
                        break
                    except OSError:
                        failed.add((fd, name))
        if descend is not None:
            stack.append(descend)
            continue
        fd, name = stack.pop()
        os.close(fd)
        if stack:
            try:
                os.rmdir(name, dir_fd=stack[-1][0])
            except OSError:
                failed.add((stack[-1][0], name))
    for fd, _ in stack:
        os.close(fd)


# -- the child: one exercise's answer cell, then its pristine check ------------------------

def _child(exercise: dict, ns: dict, snapshot: dict, package_path: list, fd: int,
           ask_fd: int) -> None:
    write, dumps = os.write, json.dumps

    def send(message: dict) -> None:
        data = (dumps(message) + "\n").encode("utf-8")
        while data:
            data = data[write(fd, data):]

    import torch

    torch.manual_seed(0)
    audit = _Audit(exercise.get("reference_markers", []))
    sys.addaudithook(audit)
    setup_ns = ns
    ns = dict(ns)
    ns["get_ipython"] = lambda: _NoIPython()
    ns["display"] = _display
    before = dict(ns)
    error = None
    source = exercise.get("answer")
    if source is not None:
        audit.active = True
        try:
            exec(compile(_python_source(source), "<answer>", "exec"), ns)
        except BaseException as exc:  # noqa: BLE001 - the learner's code may raise anything
            error = _describe_error(exc, source)
        audit.phase = "check"
    audit.active = False
    defined = {}
    for name, value in list(ns.items())[:2000]:
        if name.startswith("__") or before.get(name, _MISSING) is value:
            continue
        try:
            text = repr(value)[:200]
        except Exception:  # noqa: BLE001
            text = ""
        defined[name] = {"callable": callable(value), "repr": text}
    send({"phase": "answer-done", "error": error, "defined": defined})
    restored = _restore(snapshot)
    core, _ = _fresh_checks(exercise["chapter"], package_path)
    from . import wire

    asks = os.fdopen(ask_fd, "rb")
    while True:
        line = asks.readline()
        try:
            request = json.loads(line.decode("utf-8")) if line else {"op": "done"}
        except ValueError:
            request = {"op": "done"}
        if request.get("op") == "done":
            break
        audit.active = True  # the requests call the answer's code
        try:
            reply = _serve(request, exercise, ns, setup_ns, core, wire)
        except BaseException as exc:  # noqa: BLE001 - reported to the judge as data
            reply = {"raised": {"type": type(exc).__name__, "message": str(exc)[:300]}}
        audit.active = False
        try:
            text = dumps({"phase": "reply", "reply": reply}) + "\n"
        except (TypeError, ValueError) as exc:
            text = dumps({"phase": "reply", "reply": {"raised": {
                "type": "ValueError", "message": f"the reply could not be sent: {exc}"}}}) + "\n"
        data = text.encode("utf-8")
        while data:
            data = data[write(fd, data):]
    restored += [r for r in _restore(snapshot) if r not in restored]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001
        pass
    send({"phase": "result", "restored": restored, "flags": audit.flags,
          "warnings": audit.warnings, "notes": audit.notes, "reference": audit.reference,
          "subprocesses": audit.subprocesses})


def _serve(request: dict, exercise: dict, ns: dict, setup_ns: dict, core, wire) -> dict:
    """Run one of the judge's requests in the answer's process; the reply is data only.

    ``call``: the answer's function on the judge's arguments, under the check's
    :class:`~fromscratch.checks.core.Guard` (what it returned, which tensor arguments it
    changed, and for a scalar loss its gradient with respect to the arguments that need
    one). ``model``: a model exercise's check up to the trained model's outputs on the
    judge's evaluation inputs (no labels). ``check-here``: the whole check, in this
    process (a check the judge cannot decide from data; see ``chapters/instructors.md``)."""
    import base64
    import pickle

    import torch

    class _Unpickler(pickle.Unpickler):  # the judge's data: it may name the answer's objects
        def persistent_load(self, pid):
            kind, name = pid
            if kind == "answer" and name in ns:
                return ns[name]
            raise pickle.UnpicklingError(f"no {name!r} in the answer's cell")

    import io

    payload = _Unpickler(io.BytesIO(base64.b64decode(request.get("payload", "")))).load() \
        if request.get("payload") else {}
    op = request.get("op")
    if op == "call":
        if isinstance(payload.get("rng"), torch.Tensor):
            torch.set_rng_state(payload["rng"])
        fn = ns.get(payload["name"])
        args, kwargs = payload["args"], payload["kwargs"]
        flat = wire.tensors_in((args, kwargs))
        kept = [t.detach().clone() for t in flat]
        try:
            out = core.call_guarded(fn, args, kwargs, payload["forbid"])
        except core.UsedForbidden as exc:
            return {"refused": str(exc.name)[:300]}
        except BaseException as exc:  # noqa: BLE001 - the answer's exception, by name
            raised = {"type": type(exc).__name__[:80], "message": str(exc)[:300]}
            if hasattr(core, "_not_attempted"):  # the stub's own raise, or a library's
                raised["stub"] = bool(core._not_attempted(exc))
            if hasattr(core, "_where"):
                raised["where"] = str(core._where(exc))[:300]
            return {"raised": raised}
        reply = {}
        changed = {}
        for i, (old, new) in enumerate(zip(kept, flat)):
            if tuple(old.shape) != tuple(new.shape) or not torch.equal(old, new.detach()):
                changed[str(i)] = wire.encode(new)
        reply["changed"] = changed
        leaves = [t for t in flat if t.requires_grad and t.is_leaf]
        if leaves and isinstance(out, torch.Tensor) and out.requires_grad and out.numel() == 1:
            try:
                grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
                reply["grads"] = [None if g is None else wire.encode(g) for g in grads]
            except Exception as exc:  # noqa: BLE001
                reply["grad_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        try:
            reply["value"] = wire.encode(out)
        except wire.WireError as exc:
            return {"raised": {"type": "AnswerTooLarge", "message": str(exc)}}
        return reply
    if op in ("model", "check-here"):
        exec(compile(exercise["body"], f"<{exercise['id']} check>", "exec"), ns)
        if op == "model":
            core._ANSWER_SIDE.append((payload["inputs"], None))
        try:
            result = eval(compile(exercise["call"], f"<{exercise['id']} check>", "eval"), ns)
        except core._TrainedReport as done:
            report = done.report
            try:
                outputs = wire.encode(report["outputs"])
            except wire.WireError as exc:
                return {"stage": "failed", "lines": [f"the model's outputs: {exc}"]}
            return {"stage": "trained", "outputs": outputs, "numbers": int(report["numbers"]),
                    "after": report["after"]}
        if not isinstance(result, core.CheckResult):
            return {"stage": "failed", "lines": ["the check did not return its result."]}
        if op == "model":
            return {"stage": "failed", "status": result.status, "lines": list(result.lines),
                    "refused": result.refused}
        return {"result": result.to_dict()}
    return {"raised": {"type": "ValueError", "message": f"unknown request {op!r}"}}


class _NoIPython:
    """``get_ipython()`` while grading: magics and shell commands are skipped."""

    def __getattr__(self, name):
        def skipped(*args, **kwargs):
            print(f"[grader: IPython {name} skipped while grading]")

        return skipped


def _display(*objects, **kwargs) -> None:
    for obj in objects:
        print(repr(obj))


def _python_source(source: str) -> str:
    """The cell as plain Python (IPython magics become ``get_ipython()`` calls)."""
    try:
        compile(source, "<answer>", "exec")
        return source
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - the SyntaxError is then reported as the answer's
        return source


def _describe_error(exc: BaseException, source: str = "") -> dict:
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    if line is None:
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<answer>":
                line = tb.tb_lineno
            tb = tb.tb_next
    message = str(exc)
    if isinstance(exc, SyntaxError):
        message = exc.msg
    lines = source.splitlines()
    code = lines[line - 1].strip()[:60] if isinstance(line, int) and 0 < line <= len(lines) \
        else ""
    return {"type": type(exc).__name__, "message": message[:300], "line": line, "code": code}


class _Audit:
    """Notes what the answer (and the check calling it) does that an answer should not."""

    def __init__(self, reference_markers: list):
        self.markers = [m for m in reference_markers if m]
        self.active = False
        self.phase = "answer"
        self.flags: list = []  # attacks on the grading: the exercise scores 0
        self.warnings: list = []  # blocked attempts on files: reported as tampering
        self.notes: list = []
        self.reference: list = []
        self.subprocesses: list = []
        self.home = os.path.realpath(os.environ.get("HOME", "/nonexistent"))
        self.protected = _protected_folders()

    def _flag(self, text: str, into=None) -> None:
        into = self.flags if into is None else into
        if text not in into and len(into) < 20:
            into.append(text)

    def _outside(self, path) -> str | None:
        try:
            full = os.path.realpath(os.fsdecode(path))
        except Exception:  # noqa: BLE001
            return None
        if full.startswith(self.protected):
            return full  # the Python environment or the course: read-only, even under /tmp
        for allowed in (self.home, "/tmp", "/dev/null"):
            if full == allowed or full.startswith(allowed.rstrip("/") + "/"):
                return None
        return full

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        try:
            self._event(event, args)
        except Exception:  # noqa: BLE001 - an audit hook must never raise
            pass

    def _event(self, event: str, args: tuple) -> None:
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.fsdecode(args[0])
            if any(m in path for m in self.markers) and path not in self.reference:
                self.reference.append(path[:200])
            mode, flags = (args[1] if len(args) > 1 else "r"), (args[2] if len(args) > 2
                                                                  else 0)
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing:
                outside = self._outside(path)
                if outside:
                    self._flag(f"tried to write {outside} (outside its work copy)",
                               self.warnings)
        elif event in _WRITE_EVENTS and args and isinstance(args[0], (str, bytes,
                                                                      os.PathLike)):
            outside = self._outside(args[0])
            if outside:
                self._flag(f"tried to change {outside} ({event}, outside its work copy)",
                           self.warnings)
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill") and args:
            target = args[0]
            if isinstance(target, int) and target not in (os.getpid(), 0):
                self._flag(f"tried to signal process {target} ({event})")
        elif event == "object.__setattr__" and args and isinstance(args[0], type):
            module = getattr(args[0], "__module__", "") or ""
            if (module.startswith(("fromscratch", "torch", "builtins", "json"))
                    and not _library_importing()):
                self._flag(f"changed {module}.{args[0].__name__}.{args[1]}")
        elif event in _INTROSPECTION_EVENTS:
            self._flag(f"used {event} (introspection of the grader's process)")
        elif event in _SUBPROCESS_EVENTS:
            what = repr(args[0])[:80] if args else event
            if len(self.subprocesses) < 10:
                self.subprocesses.append(f"{event}: {what}")
        elif event == "sys.addaudithook":
            self._flag("installed an audit hook")


def _library_importing() -> bool:
    """True when the class attribute is being set by an installed library's own code while
    a module is imported: torch imports parts of itself lazily (``torch._dynamo`` when a
    check trains a model) and sets attributes of its new classes then. Code in the work
    copy (a module the answer wrote and imports) is not exempt."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # the audit hook's own frames
    if frame is None or not frame.f_code.co_filename.startswith(_LIBRARY_ROOTS):
        return False
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


_LIBRARY_ROOTS = tuple(sorted({os.path.join(p, "") for p in
                               (sys.prefix, sys.base_prefix, sys.exec_prefix)}))


def _protected_folders() -> tuple:
    """Folders an answer must never write to, wherever they are (a clone and its virtual
    environment may live under /tmp, where the sandbox's own /tmp is writable): the Python
    environment, and the course package with the project folder around it."""
    import fromscratch

    package = os.path.dirname(os.path.realpath(fromscratch.__file__))
    folders = set(_LIBRARY_ROOTS) | {os.path.join(package, "")}
    parent = os.path.dirname(package)
    if os.path.basename(parent) == "src":  # an editable install: the project's folder
        folders.add(os.path.join(os.path.dirname(parent), ""))
    return tuple(sorted(f for f in folders if f != "/"))


# -- integrity snapshot: functions the checks rely on -------------------------------------

def _watched() -> dict:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    found = {"builtins": builtins, "math": math, "torch": torch, "torch.nn": nn,
             "torch.nn.functional": F, "torch.Tensor": torch.Tensor,
             "torch.nn.Module": nn.Module, "importlib": importlib, "json": json, "os": os,
             "sys": sys}
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
        if name == "sys" and key not in ("meta_path", "path_hooks", "addaudithook"):
            continue
        if name == "sys":
            out[key] = (value, list(value) if isinstance(value, list) else None, None)
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
            if name == "sys":
                if now is not value or (code is not None and list(value) != code):
                    changed.append(f"sys.{key}")
                    if code is not None:
                        value[:] = code
                    setattr(space, key, value)
                continue
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
    importlib.invalidate_caches()
    core = importlib.import_module("fromscratch.checks.core")
    return core, importlib.import_module(f"fromscratch.checks.{chapter}")


if __name__ == "__main__":
    main()
