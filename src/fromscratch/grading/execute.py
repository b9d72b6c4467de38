"""Execute one prepared notebook in a fresh, sandboxed kernel (a worker process).

``python -m fromscratch.grading.execute JOB.json`` reads the job the grader wrote, runs
the notebook with nbclient and writes the executed notebook and ``info.json``. When a cell
runs past its time limit or kills the kernel, the notebook is run again from the top in a
new kernel with that cell left out, so the exercises after it are still graded; the total
time limit bounds all attempts together. Outputs beyond the size limit are dropped.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from .runtime import MIME

MAX_ATTEMPTS = 4
_PAYLOAD_LIMIT = 64 * 1024


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that puts the sandbox launcher in front of the kernel's command."""

    prefix: list = []

    def format_kernel_cmd(self, extra_arguments=None):
        return list(self.prefix) + super().format_kernel_cmd(extra_arguments)


class LimitedClient(NotebookClient):
    """nbclient with an output budget, that remembers which cells it started."""

    def __init__(self, nb, max_output_bytes: int, **kw):
        super().__init__(nb, **kw)
        self.max_output_bytes = max_output_bytes
        self.output_bytes = 0
        self.truncated: set = set()
        self.started: list = []

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        self.started.append(cell_index)
        return await super().async_execute_cell(cell, cell_index, execution_count,
                                                store_history)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        data = content.get("data") or {}
        if MIME in data:  # the grader's own results: always kept (they are small)
            if len(json.dumps(data[MIME])) <= _PAYLOAD_LIMIT:
                return super().output(outs, msg, display_id, cell_index)
            return None
        size = len(json.dumps(content, default=str))
        self.output_bytes += size
        if self.output_bytes > self.max_output_bytes:
            if cell_index not in self.truncated:
                self.truncated.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"\n[grader: output beyond {self.max_output_bytes // 1024} kB "
                         "dropped]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


async def run_job(job: dict) -> dict:
    """Execute the job's notebook; return what happened (also written to ``job['info']``)."""
    nb = nbformat.read(job["notebook"], as_version=4)
    final = copy.deepcopy(nb)
    deadline = time.monotonic() + job["total_timeout"]
    skipped: dict = {}
    events: list = []
    truncated: set = set()
    outcome = "completed"
    for _attempt in range(MAX_ATTEMPTS):
        run_nb = copy.deepcopy(nb)
        for index, reason in skipped.items():
            run_nb.cells[index].source = f"# left out by the grader: {reason}"
        client = _client(run_nb, job, deadline)
        problem = None
        try:
            await client.async_execute(cwd=job["workdir"], env=job["env"])
        except CellTimeoutError:
            problem = "timeout"
        except DeadKernelError:
            problem = "kernel-died"
        except Exception as exc:  # noqa: BLE001 - e.g. the kernel did not start
            problem = "error"
            events.append({"event": "error", "cell": None,
                           "message": f"{type(exc).__name__}: {str(exc)[:500]}"})
        ran = sorted(set(client.started))
        for index in ran:
            final.cells[index] = run_nb.cells[index]
        truncated |= client.truncated
        if problem is None or problem == "error":
            outcome = problem or "completed"
            break
        index = ran[-1] if ran else None
        out_of_time = time.monotonic() >= deadline - 1
        events.append({"event": "total-timeout" if problem == "timeout" and out_of_time
                       else problem, "cell": index})
        if out_of_time or index is None or index in skipped:
            outcome = "total-timeout" if out_of_time else problem
            break
        skipped[index] = ("ran past the time limit" if problem == "timeout"
                          else "the kernel died running it")
    else:
        outcome = "too-many-failures"
    nbformat.write(final, job["output"])
    info = {"outcome": outcome, "events": events, "skipped": sorted(skipped),
            "truncated": sorted(truncated)}
    Path(job["info"]).write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def _client(nb, job: dict, deadline: float) -> LimitedClient:
    km = SandboxedKernelManager(kernel_name="python3")
    km.prefix = job["prefix"]
    if job.get("ipc"):
        km.transport = "ipc"
        km.ip = str(Path(job["workdir"]) / ".kernel-ipc")
    km.connection_file = str(Path(job["notebook"]).with_name("kernel-connection.json"))

    def timeout(cell):
        left = deadline - time.monotonic()
        if cell.metadata.get("grader_role") in ("preamble", "setup"):
            return max(1, int(left))  # the pristine set-up: only the total limit
        return max(1, int(min(job["cell_timeout"], left)))

    return LimitedClient(
        nb, job["max_output_bytes"], km=km, timeout_func=timeout, allow_errors=True,
        interrupt_on_timeout=False, shutdown_kernel="immediate", startup_timeout=60,
        iopub_timeout=10, record_timing=False, coalesce_streams=True,
    )


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    asyncio.run(run_job(job))


if __name__ == "__main__":
    main()
