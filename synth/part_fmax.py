"""Place and route one sub-component of the WTU alone, with registered inputs and outputs.

Usage::

    python -m synth.part_fmax [--config PRESET_OR_JSON] [--out DIR] [--pnr-timeout S]
        [--pnr-router router1|router2|none] [--pnr-target-mhz MHZ] PART [PART ...]

``PART`` is one of :data:`PARTS` (``Lane`` is lane 0). Each part is built for the FPGA
(:func:`hw.component.builds_for_fpga`) inside :class:`synth.fpga.RegisteredHarness` and placed
and routed on the ULX3S-85F by :func:`synth.fpga.run_fmax`, as ``make synth`` does a whole
block: every input of the part comes from a register and every output goes into one. So the
fmax of a part alone is what that part reaches when every path into and out of it is cut by
registers, an upper bound for it inside the unit (where the paths between the parts and the
wire across the die come on top). It names which parts must be pipelined further before the
unit can reach a clock, whatever is done between them.

Results: one line per part on the screen, and ``DIR/parts.json`` (``{part: {fmax_mhz, routed,
utilisation, seconds}}``); nextpnr's logs in ``DIR/PART/`` (``top.tim``: the critical path).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from hw import wtu
from model.config import load_config
from synth.fpga import (DEFAULT_ROUTER, DEFAULT_TARGET_MHZ, ROUTERS, check_router, check_target,
                        run_fmax)
from synth.tools import ToolError

__all__ = ["PARTS", "build_part", "main"]

#: The WTU's sub-components that can be measured alone (:mod:`hw.wtu`).
PARTS = ("Lane", "LaneMemories", "BucketLists", "RowStatistics", "BucketMasses", "Decision",
         "AggregateEmitter", "Sequencer")


def build_part(name, config):
    """The part ``name`` (one of :data:`PARTS`) for ``config``; ``Lane`` is lane 0.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`PARTS`.
    """
    if name not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, not {name!r}")
    part = getattr(wtu, name)
    return part(config, 0) if name == "Lane" else part(config)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m synth.part_fmax",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("parts", nargs="+", metavar="PART", help=f"one of {', '.join(PARTS)}")
    parser.add_argument("--config", default="edge", help="preset name or JSON file (default edge)")
    parser.add_argument("--out", type=Path, default=Path("build/reports/parts"),
                        help="result folder (default build/reports/parts)")
    parser.add_argument("--pnr-timeout", type=float, default=1800,
                        help="seconds per part's place and route (default 1800)")
    parser.add_argument("--pnr-router", choices=ROUTERS, default=DEFAULT_ROUTER,
                        help=f"nextpnr's router, or none: placed only (default {DEFAULT_ROUTER})")
    parser.add_argument("--pnr-target-mhz", type=float, default=DEFAULT_TARGET_MHZ,
                        metavar="MHZ", help=f"clock constraint (default {DEFAULT_TARGET_MHZ})")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        check_router(args.pnr_router)
        check_target(args.pnr_target_mhz)
        if not args.pnr_timeout > 0:
            raise ValueError(f"pnr_timeout must be a positive number of seconds, "
                             f"not {args.pnr_timeout!r}")
        parts = {name: build_part(name, config) for name in args.parts}
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    results = {}
    for name, part in parts.items():
        print(f"{name}: placing and routing alone on the ECP5-85F ...", flush=True)
        started = time.monotonic()
        try:
            result = run_fmax(part, "ecp5", args.out / name, name, timeout=args.pnr_timeout,
                              target_mhz=args.pnr_target_mhz, router=args.pnr_router)
        except ToolError as error:
            results[name] = {"error": str(error)}
            print(f"{name}: failed: {error}", flush=True)
            continue
        results[name] = {"fmax_mhz": result["fmax_mhz"], "routed": result.get("routed", True),
                         "utilisation": result["utilisation"],
                         "seconds": round(time.monotonic() - started, 1)}
        kind = "routed" if results[name]["routed"] else "estimated after placement"
        print(f"{name}: {result['fmax_mhz']} MHz {kind} "
              f"({results[name]['seconds']} s; {', '.join(result['utilisation'][-2:])})",
              flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parts.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {args.out / 'parts.json'}")
    return 1 if any("error" in result for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
