"""Start a grading kernel in a restricted process, and find out which restrictions work here.

The grader launches every kernel through this module::

    [unshare -n] python -m fromscratch.grading.sandbox --workdir W [--user nobody]
        [--cpu-seconds N] [--file-size-mb M] -- python -m ipykernel_launcher -f CONN

Before handing over to the kernel (``exec``, same process) it

- copies the connection file into the working directory, readable by the kernel's user;
- sets resource limits: CPU seconds (a backstop behind the grader's wall-clock limits),
  the largest file the kernel may write, and the number of processes (when it runs as a
  dedicated user);
- drops root privileges to ``--user`` (only possible when the grader runs as root), so
  the learner's code cannot write or delete the instructor's files;
- asks Linux to kill the kernel when its parent (the grading worker) dies.

``unshare -n`` (a network namespace with no interfaces) is added by the grader when the
system allows it; the kernel then talks to the grader over Unix sockets (ZMQ ``ipc``).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SANDBOX_USER = "nobody"


@dataclass(frozen=True)
class Isolation:
    """The restrictions the grader can apply on this machine."""

    network: list  # command prefix for a process without network ([] if unavailable)
    user: str | None  # user the kernel runs as (None: the grader's own user)
    ipc: bool  # kernel and grader talk over Unix sockets
    user_problem: str = ""  # why no separate user, when the grader runs as root

    def describe(self) -> list:
        """Human-readable lines, one per restriction, saying whether it applies."""
        lines = ["temporary working directory (cwd) per submission: yes",
                 "fresh kernel process per submission, stripped environment: yes",
                 "per-cell and total time limits, output size limit, CPU-time and "
                 "file-size rlimits: yes"]
        lines.append("no network (" + " ".join(self.network) + "): yes" if self.network
                     else "no network: NOT available here (unshare not permitted)")
        if self.user:
            lines.append(f"runs as user {self.user!r} (cannot write your files): yes")
        else:
            lines.append("separate user: NOT available ("
                         + (self.user_problem or "the grader does not run as root")
                         + "): learner code can read and write whatever your user can")
        return lines


def detect_isolation(want_network: bool = True, want_user: bool = True) -> Isolation:
    """Probe what this machine allows: ``unshare`` for the network, root for a user switch."""
    ipc = os.name == "posix"
    network: list = []
    unshare = shutil.which("unshare")
    if want_network and ipc and unshare:
        for prefix in ([unshare, "-n"], [unshare, "-r", "-n"]):
            try:
                ok = subprocess.run(prefix + ["true"], capture_output=True, timeout=10).returncode
            except (OSError, subprocess.SubprocessError):
                continue
            if ok == 0:
                network = prefix
                break
    user, why = None, ""
    if want_user and ipc and hasattr(os, "geteuid") and os.geteuid() == 0 \
            and network[1:2] != ["-r"]:
        user, why = _probe_user(SANDBOX_USER)
    return Isolation(network=network, user=user, ipc=ipc, user_problem=why)


def _probe_user(name: str) -> tuple:
    """Can ``name`` run this Python and import what a kernel needs? ``(name or None, why)``."""
    try:
        import pwd

        pwd.getpwnam(name)
    except (ImportError, KeyError):
        return None, f"no user {name!r}"
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        cmd = [sys.executable, "-m", "fromscratch.grading.sandbox", "--workdir", tmp,
               "--user", name, "--", sys.executable, "-c",
               "import ipykernel, torch, fromscratch"]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"user {name!r} cannot start Python: {exc}"
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
        return None, f"user {name!r} cannot run {sys.executable}: {last}"
    return name, ""


def prepare_workdir(workdir: Path, user: str | None) -> None:
    """Let the sandbox user own the kernel's working directory (and nothing else)."""
    if user is None:
        return
    import pwd

    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(workdir):
        for name in [root, *(os.path.join(root, d) for d in dirs),
                     *(os.path.join(root, f) for f in files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)
    # the folders above must be traversable, not readable or writable
    for parent in (workdir.parent, workdir.parent.parent):
        os.chmod(parent, 0o711)


def kernel_prefix(isolation: Isolation, workdir: Path, cpu_seconds: int,
                  file_size_mb: int) -> list:
    """The command put in front of the kernel's own command line."""
    cmd = list(isolation.network) + [sys.executable, "-m", "fromscratch.grading.sandbox",
                                     "--workdir", str(workdir),
                                     "--cpu-seconds", str(int(cpu_seconds)),
                                     "--file-size-mb", str(int(file_size_mb))]
    if isolation.user:
        cmd += ["--user", isolation.user]
    return cmd + ["--"]


def _set_limits(cpu_seconds: int, file_size_mb: int, nproc: int | None) -> None:
    import resource

    if cpu_seconds > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if file_size_mb > 0:
        size = file_size_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _die_with_parent() -> None:
    """Linux only: SIGKILL this process when the process that started it exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list | None = None) -> None:
    """Entry point of the launcher (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m fromscratch.grading.sandbox")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--user", default=None)
    parser.add_argument("--cpu-seconds", type=int, default=0)
    parser.add_argument("--file-size-mb", type=int, default=0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the kernel's command after --")
    workdir = Path(args.workdir)
    if "-f" in command:  # the connection file: copy it where the kernel's user can read it
        i = command.index("-f") + 1
        local = workdir / ".kernel-connection.json"
        shutil.copyfile(command[i], local)
        os.chmod(local, 0o600)
        command[i] = str(local)
    nproc = None
    if args.user:
        import pwd

        entry = pwd.getpwnam(args.user)
        if (workdir / ".kernel-connection.json").exists():
            os.chown(workdir / ".kernel-connection.json", entry.pw_uid, entry.pw_gid)
        nproc = 512
        _set_limits(args.cpu_seconds, args.file_size_mb, None)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        _set_limits(0, 0, nproc)
    else:
        _set_limits(args.cpu_seconds, args.file_size_mb, None)
    _die_with_parent()  # after the user switch, which clears it
    os.chdir(workdir)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
