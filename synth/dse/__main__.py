"""``python -m synth.dse``: design-space exploration of the DRE on Dask (``make dse``).

Usage::

    python -m synth.dse --grid synth/dse/default_grid.toml --out build/dse
        [--scheduler tcp://host:8786] [--workers N] [--kv-dump FILE.npz] [--pdk-root DIR]
        [--no-cache] [--time-workers 1 2] [--no-progress]

Writes ``points.json``, ``points.md``, ``pareto_area_time.png`` and ``pareto_recall_tokens.png``
into ``--out`` and prints the Pareto-optimal points.
"""

import argparse
import os
import sys
from pathlib import Path

from synth.dse.run import explore

__all__ = ["main", "DEFAULT_GRID"]

#: The documented default grid.
DEFAULT_GRID = Path(__file__).with_name("default_grid.toml")


def _parser():
    parser = argparse.ArgumentParser(prog="python -m synth.dse",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--grid", default=str(DEFAULT_GRID),
                        help="grid file, JSON or TOML (default synth/dse/default_grid.toml)")
    parser.add_argument("--out", default="build/dse", help="output folder (build/dse)")
    parser.add_argument("--scheduler", default=os.environ.get("DASK_SCHEDULER") or None,
                        help="address of an existing Dask scheduler, e.g. tcp://host:8786 "
                             "(default: $DASK_SCHEDULER, else a LocalCluster)")
    parser.add_argument("--workers", type=int,
                        help="workers of the LocalCluster (default: one per core)")
    parser.add_argument("--kv-dump", help="KV dump .npz for timing and quality instead of the "
                                          "synthetic workloads")
    parser.add_argument("--pdk-root", default=os.environ.get("PDK_ROOT") or None,
                        help="IHP SG13G2 PDK_ROOT on the workers: um^2 and OpenSTA critical "
                             "path (default: $PDK_ROOT)")
    parser.add_argument("--no-cache", action="store_true",
                        help="compute every point again (the cache is still updated)")
    parser.add_argument("--time-workers", type=int, nargs="+", metavar="N",
                        help="run the points once per worker count on a new LocalCluster and "
                             "record each wall time (implies --no-cache)")
    parser.add_argument("--no-progress", action="store_true", help="no Dask progress bar")
    return parser


def _print_pareto(document):
    by_index = {point["index"]: point for point in document["points"]}
    for front, indices in document["pareto"].items():
        x_name, y_name = document["objectives"][front]
        print(f"Pareto front {front} ({x_name} against {y_name}):")
        for index in indices:
            point = by_index[index]
            paper = "  (paper's configuration)" if point["paper"] else ""
            print(f"  #{index} {point['params']}: {x_name} {point['metrics'][x_name]}, "
                  f"{y_name} {point['metrics'][y_name]}{paper}")


def main(argv=None):
    args = _parser().parse_args(argv)

    def log(line):
        print(f"dse: {line}", file=sys.stderr, flush=True)

    try:
        document = explore(args.grid, args.out, scheduler=args.scheduler, workers=args.workers,
                           kv_dump=args.kv_dump, pdk_root=args.pdk_root,
                           use_cache=not (args.no_cache or args.time_workers),
                           time_workers=args.time_workers, show_progress=not args.no_progress,
                           log=log)
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _print_pareto(document)
    for run in document["runs"]:
        print(f"run: {run['points']} points on {run['workers']} worker(s) in {run['seconds']} s")
    failed = [p for p in document["points"] if p["status"] != "ok"]
    print(f"wrote {args.out}/points.json, points.md, pareto_*.png "
          f"({len(document['points']) - len(failed)} points ok, {len(failed)} invalid or failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
