"""File interface of every DRE block: ``.npz`` trace in, ``.npz`` results out, on the model or the RTL.

Usage::

    python -m sim.run {hcu,wtu,buffer} --config PRESET_OR_JSON --input IN.npz --output OUT.npz \
        [--engine model|rtl]

``--engine model`` runs the block's bit-exact numpy twin (``model/``); ``--engine rtl`` runs the
generated Verilog under cocotb and Icarus Verilog and writes the same keys. The keys of each
block are listed by ``python -m sim.run BLOCK --help`` and in the README.
"""

import argparse
import importlib
import sys
import time
from pathlib import Path

from model.config import load_config
from model.npzio import load_arrays, save_arrays

__all__ = ["ENGINES", "run_block", "main"]

#: block name -> (model twin module, RTL engine module). Each model module defines ``INPUTS``
#: and ``OUTPUTS`` (lists of :class:`model.npzio.ArraySpec`) and ``run_arrays(config, arrays)``;
#: each RTL module defines ``run_arrays(config, arrays, workdir)`` with the same result keys.
ENGINES = {
    "hcu": ("model.twins.hcu", "sim.hcu_rtl"),
    "wtu": ("model.twins.wtu", "sim.wtu_rtl"),
    "buffer": ("model.twins.retrieval_buffer", "sim.retrieval_buffer_rtl"),
}


def block_model(block):
    """The model twin module of ``block``."""
    if block not in ENGINES:
        raise ValueError(f"block must be one of {', '.join(ENGINES)}, not {block!r}")
    return importlib.import_module(ENGINES[block][0])


def run_block(block, config, arrays, engine="model", workdir=None):
    """Run ``block`` on validated input ``arrays`` with ``engine`` and return its output arrays.

    Parameters
    ----------
    block : str
        ``hcu``, ``wtu`` or ``buffer``.
    config : DREConfig
        The configuration.
    arrays : dict
        Input arrays, already checked against the block's ``INPUTS``.
    engine : str
        ``model`` (numpy twin) or ``rtl`` (cocotb on the generated Verilog).
    workdir : pathlib.Path, optional
        Build folder of the RTL run (default ``build/run/BLOCK``).
    """
    twin = block_model(block)
    if engine == "model":
        return twin.run_arrays(config, arrays)
    if engine == "rtl":
        rtl = importlib.import_module(ENGINES[block][1])
        return rtl.run_arrays(config, arrays, Path(workdir or Path("build") / "run" / block))
    raise ValueError(f"engine must be 'model' or 'rtl', not {engine!r}")


def _key_help(block):
    twin = block_model(block)
    def rows(specs):
        return "\n".join(f"  {spec.name:14s} {spec.doc}" for spec in specs)
    return f"input keys:\n{rows(twin.INPUTS)}\noutput keys:\n{rows(twin.OUTPUTS)}"


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m sim.run", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="block", required=True, metavar="BLOCK")
    for block in ENGINES:
        block_parser = sub.add_parser(block, help=f"run the {block} on a .npz trace",
                                      epilog=_key_help(block),
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        block_parser.add_argument("--config", default="edge",
                                  help="preset name (tiny, edge, server) or JSON file [edge]")
        block_parser.add_argument("--input", required=True, type=Path, help="input .npz")
        block_parser.add_argument("--output", required=True, type=Path, help="output .npz")
        block_parser.add_argument("--engine", choices=("model", "rtl"), default="model",
                                  help="numpy twin or RTL simulation [model]")
        block_parser.add_argument("--workdir", type=Path, default=None,
                                  help="build folder of the RTL run [build/run/BLOCK]")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        arrays = load_arrays(args.input, block_model(args.block).INPUTS)
        start = time.perf_counter()
        result = run_block(args.block, config, arrays, args.engine, args.workdir)
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    save_arrays(args.output, result)
    print(f"{args.block} ({args.engine}): {args.input} -> {args.output} "
          f"in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
