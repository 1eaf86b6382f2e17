"""``vrex-dre``: every command-line entry point of the project, as subcommands.

``make`` installs the project into ``.venv`` (editable), so ``vrex-dre`` (and ``python -m ...``
of each module) works from any folder. ``vrex-dre --help`` lists the subcommands;
``vrex-dre SUBCOMMAND --help`` shows the options of one.
"""

import importlib
import sys

__all__ = ["COMMANDS", "main"]

#: subcommand -> (module with ``main(argv)``, one-line help)
COMMANDS = {
    "verilog": ("hw.verilog", "write (and lint) the Verilog of the blocks"),
    "run": ("model.main", "the main job: ReSV and the baselines on a workload or a KV dump"),
    "summary": ("model.summary", "summarise what `make` generated and measured"),
    "block": ("sim.run", "run one block on a .npz trace, on its twin or its RTL"),
    "bench": ("sim.bench", "the measured figures of the model and the blocks"),
    "synth": ("synth.flow", "area, timing and FPGA reports"),
    "report": ("synth.report", "print the last synthesis report again"),
    "system": ("model.system.__main__", "the V-Rex system model: frame latency, FPS, energy"),
}


def _usage():
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: vrex-dre SUBCOMMAND [options]   (vrex-dre SUBCOMMAND --help for its options)",
             "", "subcommands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    """Dispatch to a subcommand's ``main``; returns its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
