"""Mutation check of the formal proofs: inject protocol bugs, the proofs must fail on each.

Usage::

    python -m sim.formal.mutate [--mutants NAME ...] [--out build/formal/mutants] [--jobs 2]

Each mutant copies the project's ``hw/`` package into ``OUT/NAME/hw/``, replaces one fragment
of one block's source (the fragment must occur exactly once), and runs ``python -m sim.formal``
on one small variant of that block, for the property groups that must catch the bug
(``--all-kinds``: every group), from ``OUT/NAME`` (so ``import hw`` finds the mutated copy; the
rest of the project comes from ``PYTHONPATH``). A mutant is *caught* when at least one job
fails; the table lists the jobs that failed, and their counterexample traces are VCDs in
``OUT/NAME/jobs/``. Exits with status 1 when a mutant survives.
"""

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Mutant", "MUTANTS", "apply_mutant", "run_mutant", "main"]

_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One injected bug: replace ``old`` by ``new`` in ``path`` (relative to ``hw/``'s parent),
    then prove ``block``'s ``variant`` with the job kinds ``kinds`` (the groups that must catch
    it; ``--all-kinds`` runs every group)."""

    name: str
    description: str
    path: str
    old: str
    new: str
    block: str
    variant: str
    kinds: tuple


#: The protocol bugs of the mutation check.
MUTANTS = (
    Mutant("buffer_payload_while_stalled",
           "retrieval buffer: the output register is reloaded while its beat waits for ready "
           "(payload changes while stalled)",
           "hw/retrieval_buffer.py", "out_free = ~self.o.valid | self.o.ready",
           "out_free = Const(1)", "buffer", "small", ("contract",)),
    Mutant("buffer_valid_drops",
           "retrieval buffer: the output valid is cleared every cycle, taken or not "
           "(valid drops without ready)",
           "hw/retrieval_buffer.py",
           "with m.If(self.o.ready):\n            m.d.sync += self.o.valid.eq(0)",
           "with m.If(1):\n            m.d.sync += self.o.valid.eq(0)", "buffer", "small",
           ("contract",)),
    Mutant("hcu_accept_while_full",
           "HCU: a token is accepted while every slot is held (input accepted while full)",
           "hw/hcu/unit.py", "self.i.ready.eq((ring.held < slots) | decide)", "self.i.ready.eq(1)",
           "hcu", "ring", ("conservation",)),
    Mutant("hcu_decide_without_ready",
           "HCU: the oldest token is decided whether or not the assignment was taken "
           "(valid and payload move on without ready)",
           "hw/hcu/unit.py", "decide.eq(self.o.valid & self.o.ready)", "decide.eq(self.o.valid)",
           "hcu", "ring", ("contract",)),
    Mutant("wtu_stats_valid_drops",
           "WTU: the stats beat is withdrawn after one cycle without ready "
           "(valid drops without ready)",
           "hw/wtu/sequencer.py",
           "with m.If(self.stats_ready):\n                    m.d.comb += zero.eq(1)",
           "with m.If(1):\n                    m.d.comb += zero.eq(1)", "wtu", "exact",
           ("contract",)),
    Mutant("wtu_mask_payload_while_stalled",
           "WTU: the row-mask chunk advances while its beat waits for ready "
           "(payload changes while stalled)",
           "hw/wtu/sequencer.py",
           "with m.If(self.row_mask_ready):\n                    with m.If(~self.last_chunk):",
           "with m.If(1):\n                    with m.If(~self.last_chunk):", "wtu", "exact",
           ("contract",)),
    Mutant("kvmu_count_payload_while_stalled",
           "KVMU: the count output register is reloaded while its beat waits for ready "
           "(payload changes while stalled)",
           "hw/kvmu.py", "count_advance = ~counts.valid | counts.ready", "count_advance = Const(1)",
           "kvmu", "page1", ("contract",)),
    Mutant("kvmu_assign_while_busy",
           "KVMU: an assignment is accepted in every state (input accepted beyond the problem)",
           "hw/kvmu.py", "        with m.FSM():",
           "        m.d.comb += self.assign.ready.eq(1)\n        with m.FSM():", "kvmu", "page1",
           ("conservation",)),
    Mutant("kvmu_move_over_written_page",
           "KVMU: a new page is taken from the bump pointer without advancing it (two tokens "
           "at one store address)",
           "hw/kvmu.py", "                m.d.sync += next_page.eq(next_page + 1)",
           "                m.d.sync += next_page.eq(next_page)", "kvmu", "page1",
           ("invariants",)),
    Mutant("wtu_header_while_busy",
           "WTU: a problem header is accepted in every state (input accepted while busy)",
           "hw/wtu/unit.py", "self.problem.ready.eq(sequencer.problem_ready)",
           "self.problem.ready.eq(1)", "wtu", "exact", ("conservation",)),
    Mutant("dre_status_valid_drops",
           "DRE top: the status beat is withdrawn after one cycle, taken or not "
           "(valid drops without ready)",
           "hw/dre.py",
           "                with m.If(self.status.ready):\n                    m.next = \"IDLE\"",
           "                with m.If(1):\n                    m.next = \"IDLE\"", "dre", "small",
           ("contract",)),
    Mutant("dre_status_payload_while_stalled",
           "DRE top: the status's cycle and stall counters keep counting while its beat waits "
           "for ready (payload changes while stalled)",
           "hw/dre.py", "        with m.If(busy):\n            count_up(status.cycles, 1)",
           "        with m.If(busy | self.status.valid):\n            count_up(status.cycles, 1)",
           "dre", "small", ("contract",)),
    Mutant("dre_command_while_busy",
           "DRE top: a command is taken while the previous one's status waits (input accepted "
           "while busy)",
           "hw/dre.py", "                m.d.comb += self.status.valid.eq(1)\n",
           "                m.d.comb += [self.status.valid.eq(1), self.cmd.ready.eq(1)]\n",
           "dre", "small", ("conservation",)),
    Mutant("dre_status_before_last_move",
           "DRE top: the status follows the last fetch descriptor even while the host still "
           "stalls the problem's last move or selected beat (an output beat outlives its "
           "command)",
           "hw/dre.py",
           "with m.If(beats_held):",
           "with m.If(0):", "dre", "small", ("conservation",)),
)


def apply_mutant(mutant, folder):
    """Copy ``hw/`` into ``folder`` and apply ``mutant``; returns the mutated file.

    Raises
    ------
    ValueError
        If the fragment does not occur exactly once (the RTL changed under the mutant).
    """
    folder = Path(folder)
    if (folder / "hw").exists():
        shutil.rmtree(folder / "hw")
    shutil.copytree(_ROOT / "hw", folder / "hw",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = folder / mutant.path
    source = target.read_text()
    occurrences = source.count(mutant.old)
    if occurrences != 1:
        raise ValueError(f"mutant {mutant.name}: its fragment occurs {occurrences} times in "
                         f"{mutant.path}, not once; update sim/formal/mutate.py")
    target.write_text(source.replace(mutant.old, mutant.new))
    return target


def run_mutant(mutant, out, *, kinds=None, workers=1):
    """Apply ``mutant`` under ``out/NAME`` and run its proofs.

    Returns
    -------
    dict
        ``name``, ``caught`` (a job failed), ``failed`` (the failing job kinds), ``seconds``
        and ``log`` (the driver's output).
    """
    folder = (Path(out) / mutant.name).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    apply_mutant(mutant, folder)
    kinds = tuple(kinds or mutant.kinds)
    command = [sys.executable, "-m", "sim.formal", "--blocks", mutant.block, "--variants",
               mutant.variant, "--kinds", *kinds, "--out", str(folder / "jobs"),
               "--jobs", str(workers)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    process = subprocess.run(command, cwd=folder, env=environment, capture_output=True,
                             text=True)
    seconds = time.perf_counter() - start
    log = process.stdout + process.stderr
    (folder / "formal.log").write_text(log)
    failed = [line.split()[2] for line in process.stdout.splitlines()
              if line.startswith(f"{mutant.block} ") and len(line.split()) > 5
              and line.split()[5] not in ("PASS", "result")]
    return {"name": mutant.name, "caught": process.returncode == 1 and bool(failed),
            "returncode": process.returncode, "failed": failed, "seconds": seconds,
            "log": log}


def main(argv=None):
    """Command-line entry point; returns the exit status."""
    names = [mutant.name for mutant in MUTANTS]
    parser = argparse.ArgumentParser(prog="python -m sim.formal.mutate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", nargs="+", choices=names, help="only these mutants")
    parser.add_argument("--out", type=Path, default=Path("build") / "formal" / "mutants",
                        help="folder of the mutated copies and their jobs")
    parser.add_argument("--jobs", type=int, default=1, help="formal jobs run at once [1]")
    parser.add_argument("--all-kinds", action="store_true",
                        help="run every property group on each mutant, not only the ones "
                             "that must catch it")
    args = parser.parse_args(argv)
    selected = [mutant for mutant in MUTANTS if not args.mutants or mutant.name in args.mutants]
    survivors = 0
    print(f"{'mutant':32s} {'caught':6s} {'seconds':>8s}  failing properties")
    for mutant in selected:
        kinds = ("contract", "conservation", "response", "invariants") if args.all_kinds else None
        result = run_mutant(mutant, args.out, kinds=kinds, workers=args.jobs)
        survivors += not result["caught"]
        print(f"{mutant.name:32s} {'yes' if result['caught'] else 'NO':6s} "
              f"{result['seconds']:8.1f}  {', '.join(result['failed']) or '-'}", flush=True)
        if result["returncode"] not in (0, 1):
            print(result["log"][-2000:], file=sys.stderr)
    print(f"{len(selected) - survivors} of {len(selected)} mutants caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
