"""The sandbox every submission is graded in: Debian's ``bubblewrap`` (``bwrap``).

One sandbox per submission, started by the grader as::

    bwrap --unshare-all --disable-userns --as-pid-1 --die-with-parent --new-session
          --clearenv --setenv ... --ro-bind <system and Python> --tmpfs <work copy> ...
          -- python -I -m fromscratch.grading.checker JOB_FD RESULT_FD

Inside it a submission sees its own filesystem: the system (``/usr``), the Python
installation and the course package **read-only**; a small writable work copy
(``/home/learner``, a size-limited tmpfs, also ``HOME``) and ``/tmp``; nothing else. The
reference solutions, the assignment folder, the submissions folder, the grader's output
and your home folder are not mounted, so they do not exist there. It has its own process
namespace (it cannot see or signal any process outside), no network (an empty network
namespace), a clean environment, and the checker (:mod:`fromscratch.grading.checker`, PID 1
inside) sets memory, process, file-size and CPU limits before any learner code runs. When
PID 1 ends, Linux kills every process left in the sandbox; when the grader dies, bwrap
ends the sandbox (``--die-with-parent``).

When the grader runs as root, bwrap itself runs as user ``nobody`` (the Python
installation and the package are handed to it as open directories, so a virtual
environment under ``/root`` works), so the sandbox holds no privilege at all.

Without a working ``bwrap`` the grader refuses to run and says how to install it;
``unsafe_no_sandbox`` (``--unsafe-no-sandbox``) grades anyway with only a clean
environment, a temporary folder and resource limits, for a class you trust.
"""

from __future__ import annotations

import os
import shutil
import signal
import site
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

UNSHARE, SETPRIV = "/usr/bin/unshare", "/usr/bin/setpriv"  # util-linux, on every Debian
SANDBOX_UID = 65534  # user and group inside the sandbox (and outside it, for a root grader)
INSIDE_HOME = "/home/learner"
INSTALL_HINT = ("install Debian's bubblewrap (`sudo apt-get install bubblewrap`; the course's "
                "tools/install_sandbox.sh does it) and allow unprivileged user namespaces "
                "(the default on Debian and Ubuntu); or grade a class you trust with "
                "--unsafe-no-sandbox")


class SandboxUnavailable(RuntimeError):
    """bwrap is missing or cannot create a sandbox here; the message says why and what to do."""


@dataclass
class Limits:
    memory_mb: int = 4096  # the whole sandbox (cgroup), and the address space of each process
    processes: int = 64  # processes (and threads) of the sandbox
    disk_mb: int = 200  # size of the writable work copy (and as much again for /tmp)
    file_mb: int = 100  # largest single file
    cpu_seconds: int = 900  # CPU time of each process (a backstop behind the wall-clock limits)
    shm_mb: int = 64  # size of /dev/shm (emptied after each exercise)
    cpus: float = 1.0  # CPU cores the sandbox may use at once (cgroup)


CGROUP_FS = Path("/sys/fs/cgroup")
CGROUP_V1 = ("memory", "pids", "cpu", "cpuacct")  # controllers a sandbox's cgroup uses


def _own_cgroups() -> dict:
    """``{controller or '' (cgroup v2): this process's cgroup path}``."""
    found = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            found[name] = path
    return found


class Cgroup:
    """The control group of one sandbox: a total memory cap (its processes, its in-memory
    files and the kernel memory they cost), a process cap, one CPU core's worth of time at
    most (so a submission that starts many busy processes slows only itself), and its CPU
    time, counted for all its processes. cgroup v1 (``memory``, ``pids``, ``cpu``,
    ``cpuacct``) or a v2 tree delegated to the grader; :meth:`create` returns None where
    neither can be made (then each process's own limits are what remains)."""

    def __init__(self, version: int, dirs: list):
        self.version, self.dirs = version, dirs

    @classmethod
    def create(cls, limits: Limits) -> Cgroup | None:
        name = f"fromscratch-{uuid.uuid4().hex[:12]}"
        own = _own_cgroups()
        made = []
        try:
            if all((CGROUP_FS / c / "tasks").exists() for c in CGROUP_V1):
                dirs = []
                for c in CGROUP_V1:  # cpu and cpuacct may be one hierarchy
                    d = (CGROUP_FS / c).resolve() / own.get(c, "/").lstrip("/") / name
                    if d not in dirs:
                        dirs.append(d)
                for d in dirs:
                    d.mkdir()
                    made.append(d)
                group = cls(1, made)
                group._write("memory.limit_in_bytes", limits.memory_mb << 20)
                group._write("memory.memsw.limit_in_bytes", limits.memory_mb << 20,
                             optional=True)
                group._write("pids.max", limits.processes)
                period = 100000
                group._write("cpu.cfs_period_us", period)
                group._write("cpu.cfs_quota_us", int(period * limits.cpus))
            elif (CGROUP_FS / "cgroup.controllers").exists() and "" in own:
                d = None
                # our own group (delegated to us; it must hold no process), else the top
                for parent in dict.fromkeys([CGROUP_FS / own[""].lstrip("/"), CGROUP_FS]):
                    try:
                        wanted = {"memory", "pids", "cpu"}
                        enabled = set((parent / "cgroup.subtree_control").read_text().split())
                        if not wanted <= enabled:
                            (parent / "cgroup.subtree_control").write_text(
                                " ".join(f"+{c}" for c in sorted(wanted - enabled)))
                        (parent / name).mkdir()
                        d = parent / name
                        break
                    except OSError:
                        continue
                if d is None:
                    return None
                made.append(d)
                group = cls(2, made)
                group._write("memory.max", limits.memory_mb << 20)
                group._write("memory.swap.max", 0, optional=True)
                group._write("pids.max", limits.processes)
                group._write("cpu.max", f"{int(100000 * limits.cpus)} 100000")
            else:
                return None
        except OSError:
            for d in made:
                try:
                    d.rmdir()
                except OSError:
                    pass
            return None
        if any(any(c.isspace() for c in str(d)) for d in made):
            cls(0, made).remove()
            return None
        return group

    def _file(self, name: str) -> Path:
        prefix = name.split(".")[0]
        for d in self.dirs:
            if (d / name).exists() or self.version == 2:
                return d / name
        raise OSError(f"no {prefix} controller file {name}")

    def _write(self, name: str, value, optional: bool = False) -> None:
        try:
            self._file(name).write_text(str(value))
        except OSError:
            if not optional:
                raise

    def _read(self, name: str) -> str:
        try:
            return self._file(name).read_text()
        except OSError:
            return ""

    def procs_files(self) -> list:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process of the sandbox so far (also those that ended)."""
        if self.version == 1:
            text = self._read("cpuacct.usage").strip()
            return int(text) / 1e9 if text.isdigit() else None
        for line in self._read("cpu.stat").splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec" and value.strip().isdigit():
                return int(value) / 1e6
        return None

    def out_of_memory(self) -> bool:
        """Whether the sandbox reached its memory cap (the kernel then ended a process)."""
        text = self._read("memory.oom_control" if self.version == 1 else "memory.events")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                return True
        return False

    def pids(self) -> list:
        found = set()
        for d in self.dirs:
            try:
                found |= {int(p) for p in (d / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return sorted(found)

    def remove(self) -> None:
        """End every process left in it, then remove it (bounded: a few seconds)."""
        end = time.monotonic() + 5
        while True:
            if self.version == 2:
                self._write("cgroup.kill", 1, optional=True)
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            for d in list(self.dirs):
                try:
                    d.rmdir()
                    self.dirs.remove(d)
                except FileNotFoundError:
                    self.dirs.remove(d)
                except OSError:
                    pass
            if not self.dirs or time.monotonic() > end:
                return
            time.sleep(0.05)


@dataclass
class Isolation:
    """How submissions are isolated here (what :func:`detect` found)."""

    bwrap: str | None  # path of bwrap, None when unsafe_no_sandbox
    drop_to_nobody: bool  # the grader is root: run bwrap as user nobody
    mounts: list = field(default_factory=list)  # (source, destination) read-only binds
    hidden: list = field(default_factory=list)  # folders covered by an empty read-only tmpfs
    problem: str = ""
    cgroups: int = 0  # cgroup version used for each sandbox, 0: none could be made here

    @property
    def sandboxed(self) -> bool:
        return self.bwrap is not None

    def describe(self) -> list:
        if not self.sandboxed:
            return ["NO SANDBOX (--unsafe-no-sandbox): learner code runs as your user and can "
                    "read and write whatever you can; only a clean environment, a temporary "
                    "working folder, time and resource limits apply"]
        who = "user nobody (bwrap dropped root)" if self.drop_to_nobody else "your user"
        return [
            f"bubblewrap sandbox per submission ({self.bwrap}), run as {who}",
            "filesystem: system, Python and course package read-only; work copy "
            f"{INSIDE_HOME} (size-limited tmpfs) writable; reference solutions, assignment, "
            "other submissions and grader files not mounted",
            "own PID, network (none), IPC and UTS namespaces; clean environment",
            "limits: memory, processes, work-copy size, file size, CPU time; every process "
            "killed at the end of each exercise",
            (f"a cgroup (v{self.cgroups}) per sandbox: total memory (files in memory and "
             "kernel memory included), processes, one CPU core; time limits count the "
             "sandbox's own CPU time" if self.cgroups else
             "no cgroup could be made here (run the grader as root, or on cgroup v2 with a "
             "delegated tree, for one): memory is limited per process, CPU shares are not "
             "limited; time limits count each exercise's own CPU time"),
        ]


def _site_dirs() -> list:
    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    return [Path(d) for d in dirs if Path(d).is_dir()]


def _within(path: Path, roots: list) -> bool:
    return any(path == r or r in path.parents for r in roots)


def python_mounts() -> tuple:
    """``(read-only mounts, hidden folders)`` the checker needs: the Python installation,
    its packages and the course package, minus the exercise files (reference solutions)."""
    import fromscratch

    package = Path(fromscratch.__file__).resolve().parent
    roots = []
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              Path(sys.executable).resolve().parent.parent):
        p = Path(p).resolve()
        if p.is_dir() and str(p) not in ("/", "/usr") and not _within(p, roots):
            roots = [r for r in roots if not _within(r, [p])] + [p]
    for d in _site_dirs():
        d = d.resolve()
        if not _within(d, roots) and not _within(d, [Path("/usr")]):
            roots.append(d)
    if not _within(package, roots) and not _within(package, [Path("/usr")]):
        roots.append(package)  # an editable install: only the package folder, not the clone
    hidden = []
    for d in [*_site_dirs(), package.parent]:
        candidate = (d / "fromscratch" / "_exercises").resolve()
        if candidate.is_dir() and candidate not in hidden:
            hidden.append(candidate)
    clone_exercises = package.parents[1] / "exercises"
    if clone_exercises.is_dir() and _within(clone_exercises.resolve(), roots):
        hidden.append(clone_exercises.resolve())
    return [(str(r), str(r)) for r in sorted(roots)], [str(h) for h in hidden]


def python_command(module: str, *args: str, code: str = "") -> list:
    """``python -I`` running ``module`` (or ``code``) with the very package the grader
    imported first on ``sys.path``: a clone used through ``PYTHONPATH``, which ``-I``
    ignores, grades with its own checks, never with another installed copy's."""
    import fromscratch

    top = str(Path(fromscratch.__file__).resolve().parent.parent)
    code = code or f"import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    return [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {top!r}); {code}", *args]


def _system_binds() -> list:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib32", "lib64", "libx32", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives"):
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def detect(unsafe_no_sandbox: bool = False) -> Isolation:
    """Find bwrap and check that it can start a sandbox here; raise
    :class:`SandboxUnavailable` with a clear message when it cannot."""
    if unsafe_no_sandbox:
        return Isolation(None, False)
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"the grading sandbox needs Linux (this is {sys.platform}); "
                                 "grade on a Linux machine, or a class you trust with "
                                 "--unsafe-no-sandbox")
    bwrap = shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap")
                                           if os.access(p, os.X_OK)), None)
    if not bwrap:
        raise SandboxUnavailable("bwrap (bubblewrap) was not found: " + INSTALL_HINT)
    mounts, hidden = python_mounts()
    root = os.geteuid() == 0
    if root and not (os.access(UNSHARE, os.X_OK) and os.access(SETPRIV, os.X_OK)
                     and os.path.isdir("/mnt")):
        raise SandboxUnavailable(f"running as root, the grader needs {UNSHARE}, {SETPRIV} "
                                 "(util-linux) and /mnt to start bwrap as user nobody")
    isolation = Isolation(bwrap, root, mounts, hidden)
    group = Cgroup.create(Limits())
    if group is not None:
        isolation.cgroups = group.version
        group.remove()
    probe = Sandbox(isolation, Limits(), notebook=None)
    try:
        done = probe.run_simple(python_command("", code="import fromscratch.grading.checker, torch"),
                                timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxUnavailable(f"bwrap could not be started ({exc}): " + INSTALL_HINT) from None
    if done.returncode != 0:
        last = done.stdout.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise SandboxUnavailable("bwrap could not start a sandbox here ("
                                 + " | ".join(last) + "): " + INSTALL_HINT)
    return isolation


def kernel_env() -> dict:
    """The whole environment of graded code: nothing of the grader's (no tokens or keys)."""
    home = INSIDE_HOME
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin",
                                 "/usr/bin", "/bin"]),
        "HOME": home, "TMPDIR": "/tmp", "USER": "learner", "LOGNAME": "learner",
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
        "FROMSCRATCH_PROGRESS": "0", "FROMSCRATCH_DEVICE": "cpu", "FROMSCRATCH_SCALE": "small",
    }


class Sandbox:
    """The command line and open files of one submission's sandbox."""

    def __init__(self, isolation: Isolation, limits: Limits, notebook: bytes | None,
                 notebook_name: str = "submission.ipynb"):
        self.isolation = isolation
        self.limits = limits
        self.notebook = notebook
        self.notebook_name = notebook_name
        self._fds: list = []
        self.cgroup: Cgroup | None = None

    def _keep(self, fd: int) -> int:
        self._fds.append(fd)
        return fd

    def _memfd(self, data: bytes, name: str) -> int:
        fd = os.memfd_create(name) if hasattr(os, "memfd_create") else None
        if fd is None:  # pragma: no cover - Linux always has it
            import tempfile

            tmp = tempfile.TemporaryFile()
            fd = os.dup(tmp.fileno())
            tmp.close()
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        return self._keep(fd)

    def _root_prefix(self) -> tuple:
        """For a root grader: a private mount namespace where each Python folder is also
        mounted under /mnt (which user nobody can reach, unlike e.g. a venv under /root),
        then bwrap runs as nobody. Returns ``(prefix, the sources bwrap binds)``."""
        script = ["set -e", "mount -t tmpfs -o mode=0755,size=64k fromscratch-stage /mnt"]
        sources = []
        for n in range(len(self.isolation.mounts)):
            script += [f"mkdir /mnt/{n}", f'mount --bind "${{FS_SRC_{n}}}" /mnt/{n}']
            sources.append(f"/mnt/{n}")
        script.append(f"exec {SETPRIV} --reuid={SANDBOX_UID} --regid={SANDBOX_UID} "
                      "--clear-groups --inh-caps=-all --bounding-set=-all \"$@\"")
        prefix = [UNSHARE, "-m", "--propagation", "private", "/bin/sh", "-c",
                  "; ".join(script), "fromscratch-sandbox"]
        return prefix, sources

    def command(self, inner: list) -> list:
        iso, lim = self.isolation, self.limits
        if not iso.sandboxed:
            return list(inner)
        prefix, sources = ([], [m[0] for m in iso.mounts])
        if iso.drop_to_nobody:
            prefix, sources = self._root_prefix()
        if iso.cgroups and self.cgroup is None:
            self.cgroup = Cgroup.create(lim)
        if self.cgroup is not None:  # join it before anything else starts
            prefix = ["/bin/sh", "-c", 'for f in $FS_CGROUPS; do echo $$ > "$f" || exit 125; '
                      'done; exec "$@"', "fromscratch-cgroup"] + prefix
        cmd = prefix + [iso.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--as-pid-1",
               "--die-with-parent", "--new-session", "--uid", str(SANDBOX_UID),
               "--gid", str(SANDBOX_UID), "--hostname", "grader", "--clearenv"]
        if os.geteuid() == 0 and not iso.drop_to_nobody:
            cmd += ["--cap-drop", "ALL"]
        for key, value in kernel_env().items():
            cmd += ["--setenv", key, value]
        # The writable tmpfs come first: a Python environment that lives under /tmp is then
        # bound on top of the new /tmp instead of being hidden by it.
        # /dev is read-only; /dev/shm is a small tmpfs of its own (the checker empties it)
        cmd += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "01777", "--size", str(lim.shm_mb << 20), "--tmpfs", "/dev/shm",
                "--remount-ro", "/dev",
                "--perms", "01777", "--size", str(lim.disk_mb << 20), "--tmpfs", "/tmp",
                "--perms", "0700", "--size", str(lim.disk_mb << 20), "--tmpfs", INSIDE_HOME]
        cmd += _system_binds()
        for source, (_, dest) in zip(sources, iso.mounts):
            cmd += ["--ro-bind", source, dest]
        for path in iso.hidden:
            cmd += ["--perms", "0555", "--size", "4096", "--tmpfs", path]
        passwd = (f"learner:x:{SANDBOX_UID}:{SANDBOX_UID}:learner:{INSIDE_HOME}:/bin/sh\n"
                  .encode())
        group = f"learner:x:{SANDBOX_UID}:\n".encode()
        cmd += ["--ro-bind-data", str(self._memfd(passwd, "passwd")), "/etc/passwd",
                "--ro-bind-data", str(self._memfd(group, "group")), "/etc/group"]
        if self.notebook is not None:
            cmd += ["--file", str(self._memfd(self.notebook, "notebook")),
                    f"{INSIDE_HOME}/{self.notebook_name}"]
        cmd += ["--remount-ro", "/", "--chdir", INSIDE_HOME, "--"]
        return cmd + list(inner)

    def popen_kwargs(self) -> dict:
        kw = {"pass_fds": tuple(self._fds), "start_new_session": True,
              "stdin": subprocess.DEVNULL}
        if self.isolation.sandboxed:
            kw["env"] = {"PATH": "/usr/bin:/bin"}
            if self.isolation.drop_to_nobody:
                kw["env"].update({f"FS_SRC_{n}": source for n, (source, _) in
                                  enumerate(self.isolation.mounts)})
            if self.cgroup is not None:
                kw["env"]["FS_CGROUPS"] = " ".join(self.cgroup.procs_files())
        return kw

    def release(self) -> None:
        """After the sandbox ended: end what is left in its cgroup and remove it."""
        if self.cgroup is not None:
            self.cgroup.remove()

    def close(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def run_simple(self, inner: list, timeout: float) -> subprocess.CompletedProcess:
        try:
            cmd = self.command(inner)
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=timeout, **self.popen_kwargs())
        finally:
            self.close()
            self.release()
