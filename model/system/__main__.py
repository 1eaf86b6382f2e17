"""``python -m model.system``: the V-Rex system model (``make system``).

Measures retrieval with ReSV and the peers on the ``videollm`` workload (or ``--kv-dump``) at each
cache size on a sample of layers, KV heads and frames, times the DRE's problems with the block
twins, and evaluates every system, method and batch of the parameter file. Prints the table and
the comparison with the paper; writes ``system.json`` (schema in :mod:`model.system.report`) and
the PNGs into ``--out``.
"""

import argparse
import dataclasses
import math
import os
import sys
import time

from model.config import load_config
from model.main import WorkloadSource, one_blas_thread
from model.stimulus.kvdump import load_kv_dump
from model.stimulus.workload import WORKLOADS
from model.system.params import DEFAULT_SYSTEMS_FILE, load_systems
from model.system.report import (compare, evaluate, format_comparison, format_table,
                                 paper_scale, plot, write_json)
from model.system.retrieval import measure

#: The paper's cache sizes (past tokens per stream).
CACHE_TOKENS = (1000, 5000, 10000, 20000, 40000)


def _sizes(text):
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, not {text!r}")
    if any(size < 1 for size in sizes) or list(sizes) != sorted(set(sizes)):
        raise argparse.ArgumentTypeError(f"must be increasing positive integers, not {text!r}")
    return sizes


def _parser():
    parser = argparse.ArgumentParser(prog="python -m model.system",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="build/system", help="output folder (build/system)")
    parser.add_argument("--systems", default=str(DEFAULT_SYSTEMS_FILE),
                        help="parameter file (JSON, every value with its source)")
    parser.add_argument("--system", action="append",
                        help="evaluate only this system of the file (repeatable)")
    parser.add_argument("--config", default="edge", help="DRE preset or JSON file (edge)")
    parser.add_argument("--clock-mhz", type=float,
                        help="clock of the LXE and the DRE for every system (default: the "
                             "file's, the paper's 800 MHz)")
    parser.add_argument("--kv-dump", help="measure retrieval on a KV dump .npz instead")
    parser.add_argument("--workload", default="videollm", choices=sorted(WORKLOADS),
                        help="synthetic workload preset (videollm)")
    parser.add_argument("--cache-tokens", type=_sizes, default=CACHE_TOKENS,
                        help="cache sizes, comma-separated (1000,5000,10000,20000,40000)")
    parser.add_argument("--layers", type=int, default=4, help="layers sampled (4)")
    parser.add_argument("--kv-heads", type=int, default=2, help="KV heads sampled per layer (2)")
    parser.add_argument("--frames-per-size", type=int, default=2,
                        help="frames evaluated per cache size and head (2)")
    parser.add_argument("--dre-heads", type=int, default=2,
                        help="sampled heads also timed by the DRE block twins (2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of workload and hyperplanes")
    return parser


def _source(args):
    if args.kv_dump:
        return load_kv_dump(args.kv_dump)
    wcfg = WORKLOADS[args.workload]
    frames = math.ceil(args.cache_tokens[-1] / wcfg.tokens_per_frame) + args.frames_per_size + 1
    return WorkloadSource(wcfg.replace(frames=frames, seed=args.seed),
                          f"workload {args.workload} ({frames} frames)")


def run(args, progress=None):
    """Measure, evaluate and compare; returns the ``system.json`` document."""
    started = time.perf_counter()
    for name in ("layers", "kv_heads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, "
                             f"not {getattr(args, name)}")
    systems_file = load_systems(args.systems)
    chosen = args.system or list(systems_file.systems)
    unknown = [name for name in chosen if name not in systems_file.systems]
    if unknown:
        raise ValueError(f"--system must name systems of {args.systems} "
                         f"({', '.join(systems_file.systems)}), not {', '.join(unknown)}")
    if args.clock_mhz is not None:
        systems = {name: system.replace(clock_mhz=args.clock_mhz)
                   for name, system in systems_file.systems.items()}
        systems_file = dataclasses.replace(systems_file, systems=systems)
    dre_config = load_config(args.config)
    source = _source(args)
    if progress:
        progress(f"measuring retrieval on {source.source} at {list(args.cache_tokens)} tokens")
    profile = measure(source, dre_config, args.cache_tokens, layers=args.layers,
                      kv_heads=args.kv_heads, frames_per_size=args.frames_per_size,
                      dre_heads=args.dre_heads, seed=args.seed, progress=progress)
    results = evaluate(systems_file, dre_config, profile, chosen)
    paper_results = evaluate(systems_file, dre_config, profile, chosen, paper_scale(profile))
    rows, needed = compare(results, paper_results, systems_file, dre_config, profile)
    return {
        "cache_tokens": list(profile.cache_tokens),
        "methods": list(next(iter(results.values()))),
        "systems": chosen,
        "results": results,
        "results_paper_ratios": paper_results,
        "comparison": rows,
        "needed": needed,
        "retrieval": profile.summary(),
        "sampling": profile.note,
        "parameters": {"file": systems_file.path,
                       "model": {name: {"value": getattr(systems_file.model, name),
                                        "source": source_text} for name, source_text
                                 in systems_file.sources["model"].items()},
                       "systems": {name: {key: {"value": getattr(systems_file.systems[name], key),
                                                "source": text} for key, text
                                          in systems_file.sources["systems"][name].items()}
                                   for name in chosen},
                       "batches": {name: list(systems_file.batches[name]) for name in chosen}},
        "dre_config": dre_config.to_dict(),
        "clock_mhz": {name: systems_file.systems[name].clock_mhz for name in chosen},
        "runtime_s": time.perf_counter() - started,
    }


@one_blas_thread
def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        document = run(args, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    json_path = write_json(document, os.path.join(args.out, "system.json"))
    pngs = plot(document["results"], document["cache_tokens"], args.out)
    print(f"sampled: {document['sampling']}")
    print(format_table(document["results"], document["cache_tokens"]))
    print("\ncomparison with the paper (model / paper):")
    print(format_comparison(document["comparison"], document["needed"]))
    print(f"\nwrote {json_path} and {', '.join(str(p) for p in pngs)} "
          f"({document['runtime_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
