"""Running a grid on Dask distributed, with results cached by content.

:func:`explore` loads the grid, looks every valid point up in the cache (``OUT/cache/KEY.json``,
``KEY`` = :func:`cache_key` of the point's configuration and grid values, the code version and
the inputs: the grid's ``inputs``, the KV dump's SHA-256, the PDK's liberty files), submits the
others to a Dask cluster, shows Dask's progress bar, and writes the reports. A point whose task
fails (a step's exception, a lost worker, a worker running other code) is reported with its
error; the others go on. Only points without an error are cached, so a rerun retries the rest.

The cluster is a ``distributed.LocalCluster`` on this machine (one single-threaded worker
process per core by default), or the existing scheduler at ``scheduler`` (for example
``tcp://host:8786``). Tasks carry their inputs (:func:`synth.dse.point.make_task`); the KV dump
is sent to the workers once (``Client.scatter``). Workers need the project installed (the
same code: a worker whose code version differs is reported) and, for ``pdk_root``, the PDK at
that path.
"""

import datetime
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from synth.dse.grid import load_grid
from synth.dse.point import code_version, evaluate_point, make_task
from synth.dse.report import SCHEMA, finish, plot_fronts, write_json, write_markdown

__all__ = ["explore", "cache_key", "local_cluster", "inputs_identity"]


def inputs_identity(grid, kv_dump=None, pdk_root=None):
    """What every point is evaluated on, as a JSON-ready dict (part of each cache key)."""
    identity = {"inputs": grid.inputs, "kv_dump": None, "pdk": None}
    if kv_dump is not None:
        identity["kv_dump"] = hashlib.sha256(Path(kv_dump).read_bytes()).hexdigest()
    if pdk_root is not None:
        from synth.pdk import find_pdk
        from synth.silicon import DEFAULT_CLOCK_NS, check_arguments, inputs_digest
        pdk = check_arguments(pdk_root, DEFAULT_CLOCK_NS, find_pdk)
        identity["pdk"] = inputs_digest(pdk, DEFAULT_CLOCK_NS)
    return identity


def cache_key(point, version, identity):
    """SHA-256 of the point (configuration and grid values), the code version and the inputs."""
    text = json.dumps({"config": point.config.to_dict(), "params": point.params,
                       "code": version, "inputs": identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def local_cluster(workers):
    """A ``LocalCluster`` of ``workers`` single-threaded worker processes on 127.0.0.1."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=":0")


def _submit_all(client, tasks, dump, show_progress):
    """Run ``tasks`` on ``client``; returns (records by index, wall seconds)."""
    from distributed import progress, wait

    started = time.perf_counter()
    dump_future = client.scatter([dump], broadcast=True)[0] if dump is not None else None
    futures = {task["index"]: client.submit(evaluate_point, task, dump_future, pure=False,
                                            key=f"dse-point-{task['index']}")
               for task in tasks}
    if futures:
        if show_progress:
            progress(list(futures.values()))
        wait(list(futures.values()))
    records = {}
    for index, future in futures.items():
        if future.status == "finished":
            records[index] = future.result()
        else:  # the task itself failed (a lost worker, an import error on the worker)
            error = future.exception()
            records[index] = {"index": index, "metrics": {}, "seconds": {},
                              "errors": {"task": f"{type(error).__name__}: {error}"}}
        future.release()
    return records, time.perf_counter() - started


def _record(point, key, result, cached, version):
    errors = dict(result.get("errors", {}))
    if not cached and result.get("worker_code_version", version) != version:
        errors["task"] = ("the worker runs other code than this checkout (code version "
                          f"{result['worker_code_version'][:12]}, here {version[:12]}): "
                          "install the same version on every worker")
    return {"index": point.index, "params": point.params, "config": point.config.to_dict(),
            "status": "error" if errors else "ok", "errors": errors,
            "metrics": result.get("metrics", {}), "seconds": result.get("seconds", {}),
            "cached": cached, "key": key}


def explore(grid_path, out, scheduler=None, workers=None, kv_dump=None, pdk_root=None,
            use_cache=True, time_workers=None, show_progress=True, log=None):
    """Evaluate a grid file and write the reports into ``out``; returns the document.

    Parameters
    ----------
    grid_path : str or pathlib.Path
        The grid file (:mod:`synth.dse.grid`).
    out : str or pathlib.Path
        Output folder (``build/dse``): ``points.json``, ``points.md``, ``pareto_*.png``,
        ``cache/``.
    scheduler : str, optional
        Address of an existing Dask scheduler; default: a ``LocalCluster``.
    workers : int, optional
        Workers of the ``LocalCluster`` (default: one per core).
    kv_dump : path, optional
        A KV dump to measure timing and quality on instead of the synthetic workloads.
    pdk_root : path, optional
        IHP SG13G2 ``PDK_ROOT`` (the same path on every worker): um^2 and critical path.
    use_cache : bool
        Take the results of unchanged points from ``out/cache``.
    time_workers : list of int, optional
        Run the uncached points once per worker count of the list, each on a new
        ``LocalCluster`` (not with ``scheduler``), and record each run's wall time; the last
        run's records are kept.
    show_progress : bool
        Show Dask's progress bar.
    log : callable, optional
        Called with a line of text at each stage.

    Raises
    ------
    ValueError
        For a malformed grid file, an unreadable KV dump or PDK, or bad arguments.
    """
    from distributed import Client

    log = log or (lambda line: None)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, not {workers!r}")
    if time_workers is not None:
        if scheduler is not None:
            raise ValueError("time_workers starts LocalClusters; it cannot be used with "
                             "scheduler")
        if not time_workers or not all(isinstance(n, int) and n >= 1 for n in time_workers):
            raise ValueError(f"time_workers must be a list of positive integers, "
                             f"not {time_workers!r}")
    if kv_dump is not None and not Path(kv_dump).is_file():
        raise ValueError(f"kv_dump must be a KV dump .npz file, not {str(kv_dump)!r}")
    grid = load_grid(grid_path)
    out = Path(out)
    cache = out / "cache"
    version = code_version()
    identity = inputs_identity(grid, kv_dump, pdk_root)
    records, tasks, keys = {}, [], {}
    for point in grid.points:
        if point.config is None:
            records[point.index] = {"index": point.index, "params": point.params, "config": None,
                                    "status": "invalid", "errors": {"config": point.error},
                                    "metrics": {}, "seconds": {}, "cached": False, "key": None}
            log(f"point {point.index} {point.params}: invalid, skipped: {point.error}")
            continue
        keys[point.index] = key = cache_key(point, version, identity)
        stored = cache / f"{key}.json"
        if use_cache and stored.is_file():
            records[point.index] = _record(point, key, json.loads(stored.read_text()), True,
                                           version)
        else:
            tasks.append(make_task(point, grid, pdk_root=pdk_root))
    log(f"{len(grid.points)} points: {len(tasks)} to compute, "
        f"{sum(r['cached'] for r in records.values())} cached, "
        f"{sum(r['status'] == 'invalid' for r in records.values())} invalid")
    dump = (Path(kv_dump).name, Path(kv_dump).read_bytes()) if kv_dump is not None else None
    runs = []
    counts = time_workers or ([None] if tasks else [])
    results = {}
    for count in counts:
        if scheduler is not None:
            client, cluster, where = Client(scheduler), None, scheduler
        else:
            count = count or workers or os.cpu_count() or 1
            cluster = local_cluster(count)
            client, where = Client(cluster), "local"
        try:
            client.wait_for_workers(1, timeout=120)
            present = len(client.nthreads())
            log(f"{len(tasks)} points on {present} worker(s) ({where})")
            results, seconds = _submit_all(client, tasks, dump, show_progress)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        runs.append({"workers": present, "seconds": round(seconds, 2), "points": len(tasks)})
        log(f"{len(tasks)} points on {present} worker(s): {seconds:.1f} s")
    points = {point.index: point for point in grid.points}
    cache.mkdir(parents=True, exist_ok=True)
    for index, result in results.items():
        records[index] = record = _record(points[index], keys[index], result, False, version)
        for step, message in record["errors"].items():
            log(f"point {index} {record['params']}: {step} failed: {message}")
        if record["status"] == "ok":
            write_json(result, cache / f"{keys[index]}.json")
    document = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m synth.dse " + " ".join(sys.argv[1:]),
        "grid": {"file": str(grid_path), "base": grid.base_name, "axes": grid.axes,
                 "samples": grid.samples, "seed": grid.seed, "inputs": grid.inputs,
                 "product_size": grid.product_size},
        "code_version": version,
        "inputs_identity": identity,
        "scheduler": scheduler or "local",
        "workers": runs[-1]["workers"] if runs else 0,
        "runs": runs,
        "points": [records[point.index] for point in grid.points],
    }
    finish(document)
    write_json(document, out / "points.json")
    write_markdown(document, out / "points.md")
    plot_fronts(document, out)
    return document
