"""Formal proofs of the tiny-preset and quick variants (``make formal`` runs them all).

Each quick job of every harness module (its ``QUICK`` list) runs SymbiYosys and must pass; one
cover job shows the harness reaches its properties' antecedents (no vacuous pass); one mutant of
the mutation check (:mod:`sim.formal.mutate`) must be caught.
"""

import pytest

from hw.registry import blocks
from sim.formal import harness_module, planned_jobs
from sim.formal.mutate import MUTANTS, run_mutant
from sim.formal.properties import JOB_KINDS
from sim.formal.sby import Job, prepare_tools, run_job

OUT = "build/formal/pytest"
DRE_BLOCKS = [entry.name for entry in blocks(baselines=False)]
WITH_HARNESS = [name for name in DRE_BLOCKS if harness_module(name) is not None]
QUICK_JOBS = [job for name in WITH_HARNESS
              for job in planned_jobs(harness_module(name), name, quick=True)]


@pytest.fixture(scope="module", autouse=True)
def solver_prepared():
    """Run the solver once in each test process before its jobs: on a machine where YoWASP's
    boolector never ran, its first call prints a note that SymbiYosys takes for the solver's
    answer (the job then ends in ERROR, as ``make formal`` avoids by the same call)."""
    prepare_tools()


def test_the_blocks_of_the_issue_have_harnesses():
    assert {"hcu", "wtu", "buffer", "kvmu"} <= set(WITH_HARNESS)


def test_problem_queue_keeps_problem_order():
    """The harnesses' two-entry queue against a Python list, on seeded random pushes/pops."""
    import random

    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    from sim.formal.properties import ProblemQueue

    m = Module()
    push, pop, value = Signal(), Signal(), Signal(4)
    queue = ProblemQueue(m, push, value, pop, depth=2, name="q")
    rng = random.Random(7)
    seen = {"pops": 0, "pushes": 0}

    async def testbench(ctx):
        model = []
        for _ in range(300):
            do_push = rng.random() < 0.5 and len(model) < 2
            do_pop = rng.random() < 0.5 and (bool(model) or do_push)
            number = rng.randrange(16)
            ctx.set(push, do_push)
            ctx.set(pop, do_pop)
            ctx.set(value, number)
            if do_push:
                model.append(number)
                seen["pushes"] += 1
            if do_pop:
                assert ctx.get(queue.head) == model.pop(0)
                seen["pops"] += 1
            await ctx.tick()
            assert ctx.get(queue.count) == len(model) and not ctx.get(queue.overflow)

    simulator = Simulator(m)
    simulator.add_clock(1e-6)
    simulator.add_testbench(testbench)
    simulator.run()
    assert seen["pops"] > 50 and seen["pushes"] > 50


@pytest.mark.parametrize("name", WITH_HARNESS)
def test_harness_module_lists_are_consistent(name):
    module = harness_module(name)
    assert "tiny" in module.VARIANTS
    assert set(module.JOBS) <= set(module.VARIANTS)
    for variant_jobs in module.JOBS.values():
        for kind, mode, depth in variant_jobs:
            Job(name, "v", kind, mode, depth)  # validates mode and depth
            assert kind in JOB_KINDS and (mode == "cover") == (kind == "cover")
    listed = {(variant, kind) for variant, jobs in module.JOBS.items() for kind, _, _ in jobs}
    assert set(module.QUICK) <= listed


@pytest.mark.formal
@pytest.mark.parametrize("job", QUICK_JOBS, ids=[f"{job.block}-{job.variant}-{job.kind}"
                                                 for job in QUICK_JOBS])
def test_quick_proof(job):
    module = harness_module(job.block)
    result = run_job(job, module.harness(module.VARIANTS[job.variant], job.kind), OUT)
    assert result.status == "PASS", f"{result.status}: {result.message} (see {result.folder})"


@pytest.mark.formal
def test_buffer_covers_are_reached():
    module = harness_module("buffer")
    job = Job("buffer", "small", "cover", "cover", 16)
    result = run_job(job, module.harness(module.VARIANTS["small"], "cover"), OUT)
    assert result.status == "PASS", f"unreached cover statements (see {result.folder})"


@pytest.mark.formal
def test_a_protocol_bug_is_caught():
    mutant = next(mutant for mutant in MUTANTS if mutant.name == "buffer_valid_drops")
    result = run_mutant(mutant, "build/formal/pytest-mutants", kinds=("contract",))
    assert result["caught"] and result["failed"] == ["contract"], result["log"]


def test_dre_response_terms_worked_by_hand():
    """The DRE top's response bound on its ``small`` variant, each term worked by hand from the
    blocks' declared latencies (``sim/formal/dre.py``, "response")."""
    from sim.formal.dre import VARIANTS, response_bound, response_terms

    config = VARIANTS["small"]
    # Largest image: 4 header words + H + K. H = the HCU's 1 header word (2 bits: opened of a
    # 1-bit cluster id, plus one) + 2 table hashes of 1 word each = 3; K = the KVMU's 1 header
    # word (10 bits) + 2 cluster words (11 bits each) + 16 page pointers (2**4 / 1 pages, 4
    # bits each) + 1 window token (recent_window 0 + max_frame_tokens 1) = 20: 27 words.
    # KVMU worst problem: 1 + 1 + 1 x 4 + 1 + 1 x 3 + 2 + 1 + 2 x 3 + 16 x 1 (pages) + 16 x 1
    # (their links) + 2 = 53.
    # HCU: max_token_cycles = (2 entries + 1) x max(2 beats, 5) + 3 + 3 argmin stages (always
    # three, a stage without a level passes its input through its registers) = 21, plus the
    # intake.
    # WTU: load_beats(2) = 2 (one lane); max_row_cycles(2) = 2 + decide 13 x 1 = 15 (2 cycles
    # to the lanes, 5 lane stages, 3 suffix cycles, 3: no refinement); aggregate_latency = the
    # wait (2 to the lanes + 2 back + 2 to count the last beat) + a chunk's read (2 + 2 + the
    # queue's write) = 11.
    assert response_terms(config) == {
        "save": 1 + 1 + 1 + 27,             # command, status, the blocks' commands, the image
        "problem": 1 + 1 + 53,
        "restore": 27 + 2 + 1,              # the image, restore extra and decide cycles
        "per_token": 21 + 1,
        "no_rows": 1,                       # the empty selection, a cycle after the last count
        "rows": 1 + 1 + 2 + 11 + 2,         # packer, header, count beats, aggregate latency
                                            # and beats
        "per_row": 15 + 2,                  # the row, its mask beats
    }
    # A restore of one token and one row: 55 + 30 + 22 + 17 + 17.
    assert response_bound(config, mode=2, new_tokens=1, rows=1) == 141


def test_dre_harness_converts():
    """The DRE top's harness elaborates into RTLIL with its assertions (the response group,
    whose bound is built from the command's fields)."""
    from amaranth.back import rtlil

    module = harness_module("dre")
    design = module.harness(module.VARIANTS["small"], "response")
    from hw.dre import STALL_PORTS

    text = rtlil.convert(design, ports=design.ports)
    # The bound, the rejected command's 2 cycles, the status's cycles, one per stall counter.
    assert text.count('FLAVOR "assert"') == 3 + len(STALL_PORTS)
    assert 'FLAVOR "assume"' in text and 'FLAVOR "cover"' not in text
