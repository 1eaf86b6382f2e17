"""One point of a design-space exploration, evaluated where a Dask worker runs it.

:func:`evaluate_point` takes a task (a plain dict, see :func:`make_task`) that carries all its
inputs: the configuration, the grid's inputs and the PDK folder to use when the worker has
one; the KV dump's bytes, when there is one, come as a second argument. Nothing is read from the submitting machine's disk.
It runs three independent measurements and returns one record:

``synth``
    :func:`synth.flow.run_flow` on the point's configuration for the grid's blocks, generic
    gates only (no FPGA steps) in a temporary folder: ``area_ge`` (NAND2 equivalents, memories
    by bits), and with a PDK ``area_um2`` (standard cells + SRAM macros) and
    ``critical_path_ns`` (OpenSTA, the slowest block's).
``timing``
    :func:`model.system.retrieval.measure` streams the timing workload (or the KV dump) through
    ReSV to each cache size and times one problem per size with the block twins
    (:func:`model.system.dre.problem_cycles`, the one place DRE cycles come from);
    :func:`model.system.perf.frame` turns them into the system's frame time (method ``vrex``,
    batch 1) and the DRE's share of it: ``dre_cycles_<N>`` (one problem), ``dre_us_<N>`` (the
    DRE's time per frame at the system's clock), ``frame_ms_<N>`` for each cache size N.
``quality``
    :func:`model.main.run_job` on the quality workload (or the KV dump): ReSV's ``recall``,
    ``output_error`` and ``tokens_retrieved`` (share of the past tokens fetched).

A step that raises is recorded in ``errors`` with its message; the other steps still run.
"""

import contextlib
import hashlib
import io
import json
import math
import os
import tempfile
import time
import traceback
from pathlib import Path

from threadpoolctl import threadpool_limits

__all__ = ["evaluate_point", "make_task", "code_version", "CODE_FOLDERS"]

#: The project's packages whose sources make the code version of a result.
CODE_FOLDERS = ("hw", "model", "synth")

_ROOT = Path(__file__).resolve().parents[2]


def code_version():
    """SHA-256 of the project's sources (``*.py`` and ``*.json`` of :data:`CODE_FOLDERS`)."""
    digest = hashlib.sha256()
    for folder in CODE_FOLDERS:
        for path in sorted((_ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(_ROOT)).encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def make_task(point, grid, pdk_root=None):
    """The self-contained task of one valid :class:`synth.dse.grid.Point` (a plain dict).

    ``pdk_root`` is a folder that exists on the workers, or None.
    """
    return {"index": point.index, "params": point.params, "config": point.config.to_dict(),
            "inputs": grid.inputs, "pdk_root": str(pdk_root) if pdk_root else None}


def _synth(config, inputs, pdk_root, workdir):
    from synth.flow import run_flow

    config_file = workdir / "config.json"
    config_file.write_text(config.to_json())
    report = run_flow(str(config_file), workdir / "reports", blocks=inputs["blocks"],
                      fpga=False, jobs=1, pdk_root=pdk_root)
    failed = [f"{entry['name']}: {entry['errors']}" for entry in report["blocks"]
              if entry.get("errors")]
    if failed:
        raise RuntimeError("synthesis failed: " + "; ".join(failed))
    totals = report["totals"]
    paths = [entry["timing"]["critical_path_ns"] for entry in report["blocks"]]
    silicon = totals.get("silicon")
    return {"area_ge": round(totals["ge"], 1), "area_ge_memory": round(totals["ge_memory"], 1),
            "area_um2": silicon["total_um2"] if silicon else None,
            "critical_path_ns": max(paths) if all(p is not None for p in paths) else None}


def _source(name, inputs, kv_dump, workdir, cache_tokens=None, reduce=False):
    from model.main import WorkloadSource
    from model.stimulus.kvdump import load_kv_dump
    from model.stimulus.workload import WORKLOADS

    if kv_dump is not None:
        dump_name, data = kv_dump
        path = workdir / Path(dump_name).name
        if not path.exists():
            path.write_bytes(data)
        return load_kv_dump(path)
    wcfg = WORKLOADS[inputs[name]].replace(seed=inputs["seed"])
    if cache_tokens is not None:
        wcfg = wcfg.replace(frames=math.ceil(cache_tokens / wcfg.tokens_per_frame) + 2)
    if reduce:
        wcfg = wcfg.replace(layers=min(inputs["quality_layers"], wcfg.layers),
                            kv_heads=min(inputs["quality_kv_heads"], wcfg.kv_heads))
    return WorkloadSource(wcfg, f"workload {inputs[name]}")


def _timing(config, inputs, kv_dump, workdir):
    from model.system.params import load_systems
    from model.system.perf import frame
    from model.system.retrieval import measure

    sizes = inputs["cache_tokens"]
    systems = load_systems()
    if inputs["system"] not in systems.systems:
        raise ValueError(f"inputs.system must be one of {', '.join(systems.systems)}, "
                         f"not {inputs['system']!r}")
    system = systems.systems[inputs["system"]]
    source = _source("timing_workload", inputs, kv_dump, workdir, cache_tokens=sizes[-1])
    profile = measure(source, config, sizes, layers=1, kv_heads=1, frames_per_size=1,
                      dre_heads=1, seed=inputs["seed"])
    metrics = {"clock_mhz": system.clock_mhz}
    for size in sizes:
        sample = next(s for s in profile.at(size) if s.dre)
        result = frame(systems.model, system, config, profile, "vrex", 1, size)
        metrics[f"dre_cycles_{size}"] = int(sample.dre["total"])
        metrics[f"dre_us_{size}"] = round(result.dre_s * 1e6, 3)
        metrics[f"frame_ms_{size}"] = round(result.step_s * 1e3, 4)
    return metrics


def _quality(config, inputs, kv_dump, workdir):
    from model.main import run_job

    source = _source("quality_workload", inputs, kv_dump, workdir, reduce=True)
    resv = run_job(source, config, eval_count=inputs["eval_frames"],
                   seed=inputs["seed"])["methods"]["resv"]
    return {"recall": round(resv["recall"], 6), "output_error": round(resv["output_error"], 6),
            "tokens_retrieved": round(resv["ratio"], 6)}


def evaluate_point(task, kv_dump=None):
    """Evaluate one task of :func:`make_task`; returns its record (module docstring).

    ``kv_dump`` is ``(file name, bytes of the .npz)`` (sent to the workers once by the caller)
    or None for the synthetic workloads.

    Never raises for a failing step: the record's ``errors`` maps the step to its message.
    """
    from model.config import DREConfig

    started = time.perf_counter()
    config = DREConfig.from_dict(task["config"])
    record = {"index": task["index"], "params": task["params"], "metrics": {}, "errors": {},
              "seconds": {}, "worker_code_version": code_version(), "worker_pid": os.getpid()}
    steps = (("synth", lambda workdir: _synth(config, task["inputs"], task["pdk_root"], workdir)),
             ("timing", lambda workdir: _timing(config, task["inputs"], kv_dump, workdir)),
             ("quality", lambda workdir: _quality(config, task["inputs"], kv_dump,
                                                  workdir)))
    with tempfile.TemporaryDirectory(prefix="dse-") as folder, threadpool_limits(1, "blas"):
        for name, step in steps:
            step_started = time.perf_counter()
            try:
                # the flow's progress lines and summary go to the worker's log only when asked
                with contextlib.redirect_stdout(io.StringIO()):
                    record["metrics"].update(step(Path(folder)))
            except Exception as error:  # one failing step must not lose the others
                record["errors"][name] = f"{type(error).__name__}: {error}"
                record.setdefault("tracebacks", {})[name] = traceback.format_exc(limit=6)
            record["seconds"][name] = round(time.perf_counter() - step_started, 2)
    record["seconds"]["total"] = round(time.perf_counter() - started, 2)
    return json.loads(json.dumps(record))
