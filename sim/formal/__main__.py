"""Run the formal proofs of every registered block: ``python -m sim.formal`` (``make formal``).

Usage::

    python -m sim.formal [--quick] [--blocks hcu wtu] [--variants ...] [--kinds ...]
                         [--out build/formal] [--jobs 2] [--solver boolector|z3]

Takes the blocks from :mod:`hw.registry` (baselines excluded) and each block's harness module
from :mod:`sim.formal`; runs every job (property group x variant, mode and depth as the module
lists them) with SymbiYosys; prints a table (block, variant, property, mode, depth, result,
seconds) and writes ``OUT/summary.json`` and ``OUT/summary.md`` (the table in Markdown).
Exits with status 1 when a job does not pass (a failed assertion, an unreached cover, an
error or a timeout); a counterexample or cover trace is in the job's folder as a VCD (the
table's ``trace`` column).
"""

import argparse
import concurrent.futures
import json
import os
import sys
import threading
import time
from pathlib import Path

from sim.formal import harness_module, planned_jobs
from sim.formal.properties import JOB_KINDS
from sim.formal.sby import SOLVER, SOLVERS, prepare_tools, run_job

__all__ = ["run_all", "format_table", "format_markdown", "main"]

_CONVERT = threading.Lock()


def run_all(jobs, modules, out, *, workers=1, solver=SOLVER, progress=None):
    """Run ``jobs`` (harnesses from ``modules``, block name -> module); returns their results
    in the order of ``jobs``."""
    prepare_tools(solver)

    def one(job):
        module = modules[job.block]
        with _CONVERT:      # Amaranth elaboration, one at a time
            design = module.harness(module.VARIANTS[job.variant], job.kind)
        result = run_job(job, design, out, solver=solver, lock=_CONVERT)
        if progress:
            progress(result)
        return result

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, jobs))


def format_table(results):
    """The results as a fixed-width text table."""
    lines = [f"{'block':8s} {'variant':9s} {'property':13s} {'mode':6s} {'depth':>5s} "
             f"{'result':8s} {'seconds':>8s}  trace"]
    for result in results:
        job = result.job
        lines.append(f"{job.block:8s} {job.variant:9s} {job.kind:13s} {job.mode:6s} "
                     f"{job.depth:5d} {result.status:8s} {result.seconds:8.1f}  "
                     f"{result.trace or ''}")
    return "\n".join(lines)


def format_markdown(results, solver):
    """The results as a Markdown table (``OUT/summary.md``, for the README): ``prove`` rows
    hold for every depth (k-induction closed at that length), ``bmc`` rows up to their depth,
    ``cover`` rows reached every cover statement within theirs."""
    meaning = {"prove": "proved (k-induction, k = depth)",
               "bmc": "bounded (no failure up to depth)", "cover": "every cover reached"}
    lines = [f"Solver {solver}; seconds are wall time on the machine that ran them.", "",
             "| block | variant | property | mode | depth | result | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for result in results:
        job = result.job
        status = result.status if result.status != "PASS" else meaning[job.mode]
        lines.append(f"| {job.block} | {job.variant} | {job.kind} | {job.mode} | {job.depth} | "
                     f"{status} | {result.seconds:.1f} |")
    return "\n".join(lines) + "\n"


def _write_text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


def _write_json(path, data):
    _write_text(path, json.dumps(data, indent=2) + "\n")


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    from hw.registry import blocks

    parser = argparse.ArgumentParser(prog="python -m sim.formal",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="only the jobs make test runs (each module's QUICK)")
    parser.add_argument("--blocks", nargs="+", help="only these blocks")
    parser.add_argument("--variants", nargs="+", help="only these variants")
    parser.add_argument("--kinds", nargs="+", choices=JOB_KINDS, help="only these job kinds")
    parser.add_argument("--out", type=Path, default=Path("build") / "formal",
                        help="folder of the jobs and summary.json [build/formal]")
    parser.add_argument("--jobs", type=int, default=1, help="jobs run at once [1]")
    parser.add_argument("--solver", choices=SOLVERS, default=SOLVER,
                        help=f"SMT solver [{SOLVER}]")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")

    registered = [entry.name for entry in blocks(baselines=False)]
    unknown = sorted(set(args.blocks or ()) - set(registered))
    if unknown:
        parser.error(f"--blocks must name registered blocks ({', '.join(registered)}), "
                     f"not {', '.join(unknown)}")
    modules, jobs = {}, []
    for name in args.blocks or registered:
        module = harness_module(name)
        if module is None:
            print(f"note: block {name!r} has no harness module sim/formal/{name}.py yet")
            continue
        modules[name] = module
        jobs += planned_jobs(module, name, variants=args.variants, kinds=args.kinds,
                             quick=args.quick)
    if not jobs:
        print("error: no formal job selected", file=sys.stderr)
        return 2

    def progress(result):
        job = result.job
        print(f"  {job.block}/{job.variant}/{job.kind} ({job.mode}, depth {job.depth}): "
              f"{result.status} in {result.seconds:.1f} s", flush=True)

    print(f"{len(jobs)} formal jobs, {args.jobs} at a time, solver {args.solver} "
          f"-> {args.out}/", flush=True)
    start = time.perf_counter()
    results = run_all(jobs, modules, args.out, workers=args.jobs, solver=args.solver,
                      progress=progress)
    elapsed = time.perf_counter() - start
    print(format_table(results))
    failed = [result for result in results if result.status != "PASS"]
    print(f"{len(results) - len(failed)} of {len(results)} jobs passed in {elapsed:.1f} s "
          f"(wall time)")
    _write_json(args.out / "summary.json",
                {"solver": args.solver, "seconds": round(elapsed, 1),
                 "jobs": [result.to_dict() for result in results]})
    _write_text(args.out / "summary.md", format_markdown(results, args.solver))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
