"""File interface of every DRE block: ``.npz`` trace in, ``.npz`` results out, on the model or the RTL.

Usage::

    python -m sim.run BLOCK --config PRESET_OR_JSON --input IN.npz --output OUT.npz \
        [--engine model|rtl] [--simulator icarus|verilator]

``BLOCK`` is any block of :mod:`hw.registry` with a file interface, or one that reads a KV dump
(:func:`hw.registry.dump_blocks`: ``dre``, the DRE top), which takes ``--frames``,
``--layers``, ``--heads`` slices, ``--seed`` and ``--contexts stream|switch`` (``switch``: one
DRE serving every context, saved after each problem and restored before the next).
``--engine model`` runs its
bit-exact numpy twin (``model/twins/``); ``--engine rtl`` runs the generated Verilog under cocotb
(the ``file_run`` test of its testbench, which drives the file's arrays as one problem through
the block's codec; for the DRE, a co-simulation in which the model plays the LXE and computes
the score rows from the RTL's own assignments) and writes the same keys; its simulator is
``--simulator``, else ``SIM``, else Icarus Verilog for a block's problem (one problem: short),
and for the DRE's co-simulation the one that finishes first, build included, by the costs
``make bench`` measures (:func:`sim.simspeed.co_simulation_simulator`: Verilator simulates
faster once built, but its C++ build takes minutes, so it pays off on long runs only).
The keys of each block are listed by
``python -m sim.run BLOCK --help`` and in the README.
"""

import argparse
import os
import sys
import time
from pathlib import Path

from hw.registry import blocks, dump_blocks
from hw.registry import block as registered_block
from model.config import load_config
from model.npzio import check_arrays, load_arrays, save_arrays
from sim.runner import SIMULATORS

__all__ = ["TIMING_KEYS", "run_block", "run_rtl", "run_dump_engine", "run_dump_rtl", "main"]


#: The keys :func:`run_rtl` and :func:`run_dump_rtl` add to the RTL's arrays: the wall time of
#: the simulation itself (the cocotb test, from its results) and of the simulator's build
#: (:func:`sim.runner.build_seconds`), in seconds.
TIMING_KEYS = ("sim_seconds", "build_seconds")


def _with_timing(result, build_dir):
    """``result`` with the :data:`TIMING_KEYS` of the finished run in ``build_dir``."""
    import numpy as np

    from sim.runner import build_seconds, simulation_seconds

    return {**result, "sim_seconds": np.array(simulation_seconds(build_dir)),
            "build_seconds": np.array(build_seconds(build_dir))}


def run_rtl(name, config, arrays, workdir, *, tag="rtl", simulator=None):
    """Run block ``name``'s Verilog on ``arrays`` (one problem); every array the RTL produced.

    ``simulator`` is ``icarus`` or ``verilator`` (default: ``SIM``, else Icarus).

    Returns
    -------
    dict of numpy.ndarray
        The codec's decoded arrays, plus the :data:`TIMING_KEYS`.
    """
    from sim.runner import run_file_testcase

    entry = registered_block(name)
    result, build_dir = run_file_testcase(name, config, entry.testbench, "file_run", arrays,
                                          workdir, tag=tag, simulator=simulator)
    return _with_timing(result, build_dir)


def run_block(name, config, arrays, engine="model", workdir=None, simulator=None):
    """Run block ``name`` on ``arrays`` with ``engine`` and return its output arrays.

    Parameters
    ----------
    name : str
        A block of :mod:`hw.registry` with a file interface.
    config : DREConfig
    arrays : dict
        Input arrays (checked against the twin's ``INPUTS``).
    engine : str
        ``model`` (numpy twin) or ``rtl`` (cocotb on the generated Verilog).
    workdir : pathlib.Path, optional
        Build folder of the RTL run (default ``build/run/NAME``).
    simulator : str, optional
        Simulator of the RTL run (default: ``SIM``, else Icarus).

    Raises
    ------
    ValueError
        If the block, the engine or an input is invalid, or the RTL's outputs break the
        contract the twin's checks enforce (an overflowing HCU stream, ...).
    """
    entry = registered_block(name)
    if not entry.has_file_interface:
        raise ValueError(f"block {name!r} has no file interface")
    twin = entry.twin_module()
    arrays = check_arrays(f"{name} input", twin.INPUTS, arrays)
    if engine == "model":
        return twin.run_arrays(config, arrays)
    if engine == "rtl":
        codec = entry.make_codec()
        codec.input_beats(config, [arrays])  # invalid problems stop here, before any build
        decoded = run_rtl(name, config, arrays, Path(workdir or Path("build") / "run" / name),
                          simulator=simulator)
        return codec.engine_outputs(config, decoded, twin)
    raise ValueError(f"engine must be 'model' or 'rtl', not {engine!r}")


def run_dump_engine(name, config, path, engine="model", workdir=None, simulator=None,
                    **slices):
    """Run block ``name`` (one of :func:`hw.registry.dump_blocks`) on the KV dump ``path``.

    Parameters
    ----------
    simulator : str, optional
        Simulator of the RTL co-simulation (default: ``SIM``, else the one that finishes
        first by the measured costs, :func:`sim.simspeed.co_simulation_simulator`).
    slices : str or int
        ``frames``, ``layers``, ``heads`` (``A:B`` strings or None), ``seed`` and ``contexts``
        (``stream`` or ``switch``, :data:`model.twins.dre.CONTEXT_ORDERS`).

    Raises
    ------
    ValueError
        If the dump is malformed or does not fit ``config``, a slice is out of range, or the
        engine is not ``model`` or ``rtl``.
    """
    if engine == "rtl":
        result = run_dump_rtl(name, config, path, workdir, simulator=simulator, **slices)
        return {key: value for key, value in result.items() if key not in TIMING_KEYS}
    if engine != "model":
        raise ValueError(f"engine must be 'model' or 'rtl', not {engine!r}")
    from model.stimulus.kvdump import SPECS, KVDump

    twin = registered_block(name).twin_module()
    return twin.run_dump(config, KVDump(load_arrays(path, SPECS), str(path)), **slices)


def run_dump_rtl(name, config, path, workdir=None, *, simulator=None, tag="rtl", **slices):
    """Co-simulate block ``name``'s Verilog on the KV dump ``path`` (the RTL engine of
    :func:`run_dump_engine`, which takes the same ``slices``).

    Parameters
    ----------
    workdir : pathlib.Path, optional
        Build folder (default ``build/run/NAME``); the run builds in ``workdir/TAG``.

    Returns
    -------
    dict of numpy.ndarray
        The output keys of the block's twin, plus the :data:`TIMING_KEYS`.

    Raises
    ------
    ValueError
        As :func:`run_dump_engine`, before any build.
    """
    import numpy as np

    from model.stimulus import lxe
    from model.stimulus.kvdump import SPECS, KVDump
    from model.twins.dre import CONTEXT_ORDERS
    from sim.runner import run_file_testcase
    from sim.simspeed import co_simulation_simulator

    entry = registered_block(name)
    twin = entry.twin_module()
    arrays = load_arrays(path, SPECS)
    dump = KVDump(arrays, str(path))
    contexts = slices.get("contexts", "stream")
    if contexts not in CONTEXT_ORDERS:
        raise ValueError(f"contexts must be one of {', '.join(CONTEXT_ORDERS)}, not {contexts!r}")
    ranges = lxe.problem_slice(dump, slices.get("frames"), slices.get("layers"),
                               slices.get("heads"))
    lxe.check_dump_fits(config, dump, ranges[0])  # before any build
    run_slice = [value for part in ranges for value in (part.start, part.stop)]
    run_slice += [slices.get("seed", 0), CONTEXT_ORDERS.index(contexts)]
    if simulator is None:
        # every frame up to the slice's end is simulated, the ones before it too
        problems = ranges[0].stop * len(ranges[1]) * len(ranges[2])
        simulator = co_simulation_simulator(config, problems)
        reason = ("SIM" if os.environ.get("SIM")
                  else "the faster for this length, build included")
        print(f"{name}: {problems} problems co-simulated on {simulator} ({reason}; --simulator "
              f"to choose)", flush=True)
    result, build_dir = run_file_testcase(
        name, config, entry.testbench, "file_run",
        {**arrays, "run_slice": np.array(run_slice, np.int64)},
        Path(workdir or Path("build") / "run" / name), tag=tag, simulator=simulator)
    outputs = check_arrays("RTL response", twin.OUTPUTS,
                           {spec.name: result[spec.name] for spec in twin.OUTPUTS
                            if spec.name in result})
    return _with_timing(outputs, build_dir)


def _dump_parser(sub, entry):
    from sim.simspeed import co_simulation_rule

    twin = entry.twin_module()
    parser = _run_parser(sub, entry.name, f"run the {entry.name} on a KV dump", twin,
                         "KV dump .npz", "frame twin or RTL co-simulation [model]",
                         co_simulation_rule())
    for option, what in (("--frames", "frames"), ("--layers", "layers"), ("--heads", "KV heads")):
        parser.add_argument(option, default=None, help=f"{what} A:B to report [all]")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hyperplanes [0]")
    parser.add_argument("--contexts", choices=("stream", "switch"), default="stream",
                        help="a context per stream, or one DRE saving and restoring them "
                             "[stream]")
    parser.add_argument("--workdir", type=Path, default=None,
                        help=f"build folder of the RTL run [build/run/{entry.name}]")


def _run_parser(sub, name, summary, twin, input_help, engine_help,
                simulator_default="SIM, else icarus"):
    """A sub-parser with the options every ``sim.run`` subcommand takes."""
    parser = sub.add_parser(name, help=summary, epilog=_key_help(twin),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="edge",
                        help="preset name (tiny, edge, server) or JSON file [edge]")
    parser.add_argument("--input", required=True, type=Path, help=input_help)
    parser.add_argument("--output", required=True, type=Path, help="output .npz")
    parser.add_argument("--engine", choices=("model", "rtl"), default="model", help=engine_help)
    parser.add_argument("--simulator", choices=SIMULATORS, default=None,
                        help=f"simulator of the rtl engine [{simulator_default}]")
    return parser


def _key_help(twin):
    def rows(specs):
        return "\n".join(f"  {spec.name:14s} {spec.doc}" for spec in specs)
    return f"input keys:\n{rows(twin.INPUTS)}\noutput keys:\n{rows(twin.OUTPUTS)}"


def _error(error, source=None):
    """Print ``error`` as one line (prefixed by ``source``, the file it is about, unless it
    already names it); returns the exit status 2."""
    message = " ".join(str(error).split("\n"))
    if source is not None and str(source) not in message:
        message = f"{source}: {message}"
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m sim.run", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="block", required=True, metavar="BLOCK")
    for entry in blocks(file_interface=True):
        block_parser = _run_parser(sub, entry.name, f"run the {entry.name} on a .npz trace",
                                   entry.twin_module(), "input .npz",
                                   "numpy twin or RTL simulation [model]")
        block_parser.add_argument("--workdir", type=Path, default=None,
                                  help="build folder of the RTL run [build/run/BLOCK]")
    for entry in dump_blocks():
        _dump_parser(sub, entry)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (ValueError, TypeError) as error:
        return _error(error)
    try:
        start = time.perf_counter()
        if registered_block(args.block).kv_dump:
            result = run_dump_engine(args.block, config, args.input, args.engine, args.workdir,
                                     args.simulator, frames=args.frames, layers=args.layers,
                                     heads=args.heads, seed=args.seed, contexts=args.contexts)
        else:
            twin = registered_block(args.block).twin_module()
            arrays = load_arrays(args.input, twin.INPUTS)
            result = run_block(args.block, config, arrays, args.engine, args.workdir,
                               args.simulator)
    except (ValueError, TypeError) as error:
        return _error(error, args.input)
    save_arrays(args.output, result)
    print(f"{args.block} ({args.engine}): {args.input} -> {args.output} "
          f"in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
