"""``make bench``: the measured figures of the model and the DRE blocks, in one run.

Each section is a module with ``run(out_dir, quick=False) -> dict`` that prints its own table and
returns JSON-able figures; this driver runs them in order, shows progress, and writes everything
to ``OUT/bench.json``. Times are medians of repeated runs measured in this run; the machine is
shared, so compare ratios from one run rather than absolute times across runs.
"""

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

from hw.registry import blocks

__all__ = ["SECTIONS", "main"]

#: (section name, module): the model at a 40K-token cache and the retrieval table, then the
#: bench section of every registered block that has one, the DRE top's frame twin and its
#: simulator speed per frame.
SECTIONS = [("resv", "model.bench")] + [(entry.name, entry.bench) for entry in blocks()
                                         if entry.bench] + [("dre", "sim.bench_dre"),
                                                            ("dre_sim", "sim.bench_dre_sim")]


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench"), help="output folder")
    parser.add_argument("--only", nargs="+", choices=[name for name, _ in SECTIONS],
                        help="run only these sections")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke run")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"python": platform.python_version(), "platform": platform.platform()},
               "sections": {}}
    for name, module_name in SECTIONS:
        if args.only and name not in args.only:
            continue
        print(f"\n=== {name} ({module_name}) ===", flush=True)
        start = time.perf_counter()
        section = importlib.import_module(module_name).run(args.out, quick=args.quick)
        section["wall_seconds"] = round(time.perf_counter() - start, 2)
        results["sections"][name] = section
        print(f"--- {name} done in {section['wall_seconds']:.1f} s", flush=True)
    path = args.out / "bench.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
