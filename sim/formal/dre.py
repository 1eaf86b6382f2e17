"""Formal harness of the DRE top (:class:`hw.dre.DynamicRetrievalEngine`).

The top composes the HCU, the KVMU, the WTU and the count packer, each proved on its own by its
harness; this one proves what the top adds: its eleven ports, one command at a time, the
context port. Every input is free (``cmd``, ``hashes``, ``scores``, ``context_in``: any
payload, assumed only to keep the stream rule): the top itself rejects out-of-range commands,
checks a restored image and lets the blocks refuse theirs, so no payload assumption is needed.
The harness follows each command from its transfer to its status beat (its ``mode``,
``new_tokens`` and ``rows``) and counts the beats of every port during it.

Properties (group: what is asserted)
------------------------------------
contract
    ``assignments``, ``moves``, ``counts``, ``selected``, ``fetch``, ``status`` and
    ``context_out`` keep ``valid`` and their payloads while stalled; ``cmd``, ``hashes``,
    ``scores`` and ``context_in`` are assumed to do the same.
conservation
    One command at a time: a command is taken only when none is in flight, and exactly one
    ``status`` beat per command taken (none without one); no output is offered without a
    command in flight; ``hashes`` only for a problem (not a save) and never more than its
    ``new_tokens``; an assignment only for a hash taken before it; ``moves``, ``counts``,
    ``selected`` and ``fetch`` only for a problem, ``scores`` only for a problem with rows,
    ``context_in`` only for a restore, ``context_out`` only for a save, and at most one
    ``last`` beat per command on each of ``moves``, ``counts``, ``selected``, ``fetch`` and
    ``context_out``. At the status beat: a rejected command moved nothing on any port; an
    accepted problem took exactly ``new_tokens`` hashes and gave as many assignments, one
    complete ``moves``, ``counts``, ``selected`` and ``fetch`` stream each, and
    ``rows x ceil(N / wtu_lanes)`` score beats for its ``N`` counts; an accepted save gave one
    complete ``context_out`` image and nothing else; ``context_words`` is the words moved on
    ``context_in`` or ``context_out`` during the command.
response
    With every output always ready and every input always offered (a restore's image no
    longer than the largest, ``4 + H + K`` words of :func:`hw.dre.largest_images`, so its
    ``last`` comes), the ``status`` beat of a command comes within :func:`response_bound`
    cycles of its transfer, both included: ``command_cycles + status_cycles`` (2: exactly 2
    for a rejected command), plus for a restore its largest image's words and
    ``restore_extra_cycles + restore_decide_cycles``, plus for a problem ``new_tokens x
    (max_token_cycles + 1)`` (the HCU's declared bound between assignments, and the hash's
    intake), the KVMU's worst problem (:func:`sim.formal.kvmu.worst_problem_cycles`, from its
    declared per-step cycles) and the WTU's wait: without rows ``empty_select_cycles``, with
    rows the packer's ``latency``, the header, the ``ceil(N / wtu_lanes)`` count beats, per row
    ``max_row_cycles(N)`` and its ``ceil(N / wtu_lanes)`` mask beats, the aggregate stream's
    ``aggregate_latency`` and one aggregate beat per cluster (``N = max_clusters``); plus for a save ``context_start_cycles`` and its largest
    image. Besides, without stalls the status's own ``cycles`` equals the cycles the harness
    counted and every ``stall`` counter is 0. This group is a bounded check (``bmc``): the bound
    (53 cycles for the shortest accepted problem of ``small``) lies beyond the depths the
    solver reaches, so within a job's depth it holds for the commands that complete (rejected
    ones, one-token problems, saves); the exact checks hold on every status beat within it.
invariants
    None of the top's own beyond the above: the blocks' invariants are their harnesses'.

A ``cover`` job reaches a stall ended by a transfer on every port, the status beat of an
accepted problem with rows, a fetch descriptor, a ``context_out`` word of a save, the status
of a restore that restored a context (valid header, neither block refused, the problem ran on
it), and a rejected command.
"""

from amaranth.hdl import Cat, Mux, Signal

from model.config import PRESETS
from sim.formal.kvmu import worst_problem_cycles
from sim.formal.properties import FormalHarness, counter, drive_input, drive_output

__all__ = ["VARIANTS", "JOBS", "QUICK", "DREHarness", "response_terms", "response_bound",
           "harness"]

_TINY = PRESETS["tiny"]
_SMALL = _TINY.replace(hash_bits=4, hamming_threshold=2, hcu_lanes=2, hcu_bits_per_cycle=2,
                       hcu_tokens_in_flight=2, hcu_dispatch_width=2, hash_mem_entries=2,
                       max_clusters=2, wtu_lanes=1, wtu_buckets=2, wtu_refine_depth=0,
                       score_bits=2, count_bits=2, max_rows=1, topk_k=1, kv_token_bits=4,
                       recent_window=0, kvmu_page_tokens=1, max_frame_tokens=1)
#: Configurations proved: the preset ``tiny``, and small ones whose problems complete within
#: the depths below: ``small`` (two clusters in a two-entry table, one WTU lane, one row,
#: one-token pages, no window, one token a frame) and ``window`` (a ring table of two entries
#: for four clusters, two WTU lanes whose counts the packer packs two a beat, two rows,
#: two-token pages, a two-token recent window, two tokens a frame: the save header's ``live``,
#: page and window terms).
VARIANTS = {
    "tiny": _TINY,
    "small": _SMALL,
    "window": _SMALL.replace(max_clusters=4, wtu_lanes=2, max_rows=2, topk_k=2, recent_window=2,
                             kvmu_page_tokens=2, max_frame_tokens=2),
}
#: (kind, mode, depth) of the jobs of each variant. On ``small`` the cover job finds a one-token
#: problem without rows complete by step 18, a context restored by step 29 and a one-row
#: problem complete by step 43 (35 before the WTU's lanes ran two cycles behind its sequencer,
#: 33 before the HCU's argmin had three stages; at depth 36 that cover was no longer
#: reached): response is checked to depth 48, where every kind of command
#: reaches its status beat, conservation to depth 28 (past the restore; its steps took 3 to
#: 5 minutes each beyond, and a run to depth 36 stopped at the 1800 s limit in step 32, with
#: no failure in steps 0 to 31). ``window`` (two tokens a frame, four clusters) is
#: checked to depth 24, where a problem without rows completes (each step past it took
#: minutes); its cover job reaches every cover by step 43 (a cover of two clusters' counts
#: packed into one WTU beat was not reached by step 36 within the 1800 s limit, and was
#: dropped). ``tiny`` (64 clusters, 16 tokens a frame; about 50 s a job at depth 8) gets the
#: contract and conservation of its first 8 steps:
#: rejected commands and a problem's first hashes and assignments. No job is ``prove``: the
#: top holds the HCU and the WTU, whose contracts do not close by k-induction on their own
#: (k-induction was not tried on the top itself).
JOBS = {
    "tiny": (("contract", "bmc", 8), ("conservation", "bmc", 8)),
    "small": (("contract", "bmc", 20), ("conservation", "bmc", 28), ("response", "bmc", 48),
              ("cover", "cover", 48)),
    "window": (("contract", "bmc", 20), ("conservation", "bmc", 24), ("response", "bmc", 24),
               ("cover", "cover", 48)),
}
#: The jobs ``make test`` runs (the others run in ``make formal``): the tiny preset's, about
#: 15 s each on an idle core.
QUICK = (("tiny", "contract"), ("tiny", "conservation"))

#: Width of the harness's counters: no wrap within 63 steps, deeper than every job.
_COUNT_BITS = 6


def response_terms(config):
    """The terms of the response bound of ``config``, in cycles (the module docstring,
    "response", gives them and their sources): a dict with ``save`` (a whole save),
    ``problem`` (a problem's fixed part), ``restore`` (a restore's addition), ``per_token``
    (per new token), ``no_rows`` (the wait for the selection without rows), ``rows`` (its fixed
    part with rows) and ``per_row``."""
    from hw.count_packer import CountPacker
    from hw.dre import CONTEXT_HEADER_WORDS, DynamicRetrievalEngine as top, largest_images
    from hw.hcu import HashClusterUnit
    from hw.wtu import WiCSumThresholdUnit

    image = CONTEXT_HEADER_WORDS + sum(largest_images(config))
    answer = top.command_cycles + top.status_cycles
    hcu = _unelaborated(HashClusterUnit(config))
    wtu = _unelaborated(WiCSumThresholdUnit(config))
    clusters = config.max_clusters
    beats = wtu.load_beats(clusters)
    return {"save": answer + top.context_start_cycles + image,
            "problem": answer + worst_problem_cycles(config),
            "restore": image + top.restore_extra_cycles + top.restore_decide_cycles,
            "per_token": hcu.max_token_cycles + 1,
            "no_rows": top.empty_select_cycles,
            "rows": CountPacker.latency + 1 + beats + wtu.aggregate_latency + clusters,
            "per_row": wtu.max_row_cycles(clusters) + beats}


def response_bound(config, *, mode, new_tokens, rows):
    """Cycles within which the top answers one accepted command without stalls, as a Python
    integer (the sum of :func:`response_terms`).

    Parameters
    ----------
    config : DREConfig
    mode : int
        The command's ``mode`` (:data:`hw.dre.MODE_SAVE`, :data:`hw.dre.MODE_RESTORE` or
        another problem's).
    new_tokens, rows : int
        The command's fields (ignored by a save).
    """
    from hw.dre import MODE_RESTORE, MODE_SAVE

    terms = response_terms(config)
    if mode == MODE_SAVE:
        return terms["save"]
    selection = terms["no_rows"] if rows == 0 else terms["rows"] + rows * terms["per_row"]
    return (terms["problem"] + (mode == MODE_RESTORE) * terms["restore"]
            + new_tokens * terms["per_token"] + selection)


def _unelaborated(component):
    """``component``, built only for its declared latencies (never elaborated): Amaranth's
    warning about an unused elaboratable is silenced for it."""
    component._MustUse__silence = True
    return component


class DREHarness(FormalHarness):
    """The DRE top with free inputs and one group of properties (see the module docstring)."""

    def harness(self, m, config, props):
        from hw.dre import (CONTEXT_HEADER_WORDS, MODE_RESTORE, MODE_SAVE, STALL_PORTS,
                            largest_images)
        from hw.registry import build_component

        m.submodules.dut = dut = build_component("dre", config)
        responding = props.responding
        cmd_taken = drive_input(m, dut.cmd, props, "cmd", always_valid=responding)
        hash_taken = drive_input(m, dut.hashes, props, "hashes", always_valid=responding)
        score_taken = drive_input(m, dut.scores, props, "scores", always_valid=responding)
        word_taken = drive_input(m, dut.context_in, props, "context_in",
                                 always_valid=responding)
        given = {name: drive_output(m, getattr(dut, name), props, name)
                 for name in ("assignments", "moves", "counts", "selected", "fetch", "status",
                              "context_out")}
        command, status = dut.cmd.payload, dut.status.payload
        status_given = given["status"]

        # The command in flight, as the harness saw it.
        in_flight = Signal()
        mode = Signal.like(command.mode)
        new_tokens = Signal.like(command.new_tokens)
        rows = Signal.like(command.rows)
        with m.If(cmd_taken):
            m.d.sync += [in_flight.eq(1), mode.eq(command.mode),
                         new_tokens.eq(command.new_tokens), rows.eq(command.rows)]
        with m.Elif(status_given):
            m.d.sync += in_flight.eq(0)
        saving = in_flight & (mode == MODE_SAVE)
        solving = in_flight & (mode != MODE_SAVE)

        # The beats of each port during the command (cleared at its transfer).
        def per_command(event, name):
            count = Signal(_COUNT_BITS, name=name)
            with m.If(cmd_taken):
                m.d.sync += count.eq(0)
            with m.Elif(event):
                m.d.sync += count.eq(count + 1)
            return count

        hashes = per_command(hash_taken, "hashes_in")
        scores = per_command(score_taken, "scores_in")
        words_in = per_command(word_taken, "words_in")
        beats = {name: per_command(transfer, f"{name}_out") for name, transfer in given.items()
                 if name != "status"}
        ends = {name: per_command(given[name] & getattr(dut, name).payload.last,
                                  f"{name}_ends")
                for name in ("moves", "counts", "selected", "fetch", "context_out")}
        commands = counter(m, cmd_taken, _COUNT_BITS, "commands")
        statuses = counter(m, status_given, _COUNT_BITS, "statuses")

        # Conservation.
        check = props.checker(m, "conservation")
        check(~cmd_taken | ~in_flight)
        check(~status_given | in_flight)
        check(statuses + in_flight == commands)
        for name in given:
            check(~getattr(dut, name).valid | in_flight)
        check(~hash_taken | (solving & (hashes < new_tokens)))
        check(~given["assignments"] | (beats["assignments"] < hashes))
        for name in ("moves", "counts", "selected", "fetch"):
            check(~getattr(dut, name).valid | solving)
        check(~score_taken | (solving & (rows != 0)))
        check(~word_taken | (in_flight & (mode == MODE_RESTORE)))
        check(~dut.context_out.valid | saving)
        for name, count in ends.items():
            check(~(given[name] & getattr(dut, name).payload.last) | (count == 0))
        # Sticky from the command on: a beat of a problem's ports moved.
        problem_moved = Signal()
        with m.If(cmd_taken):
            m.d.sync += problem_moved.eq(0)
        with m.Elif(hash_taken | score_taken
                    | Cat(given[name] for name in ("assignments", "moves", "counts", "selected",
                                                   "fetch")).any()):
            m.d.sync += problem_moved.eq(1)
        check(~(status_given & status.rejected)
              | (~problem_moved & (words_in == 0) & (beats["context_out"] == 0)
                 & (status.context_words == 0)))
        accepted = status_given & ~status.rejected
        lanes_bits = config.wtu_lanes.bit_length() - 1
        count_beats = (beats["counts"] + config.wtu_lanes - 1) >> lanes_bits
        check(~(accepted & solving)
              | ((hashes == new_tokens) & (beats["assignments"] == new_tokens)
                 & (ends["moves"] == 1) & (ends["counts"] == 1) & (ends["selected"] == 1)
                 & (ends["fetch"] == 1) & (beats["context_out"] == 0)
                 & (scores == rows * count_beats) & (status.context_words == words_in)))
        check(~(accepted & saving)
              | ((ends["context_out"] == 1) & (status.context_words == beats["context_out"])
                 & ~problem_moved & (words_in == 0)))

        # Bounded response (outputs always ready, inputs always offered).
        most_image = CONTEXT_HEADER_WORDS + sum(largest_images(config))
        if responding:
            # The host's restore images are no longer than the largest image.
            props.assume(m, ~(word_taken & (words_in == most_image - 1))
                         | dut.context_in.payload.last)
        terms = response_terms(config)
        bound = Signal(range(response_bound(config, mode=MODE_RESTORE,
                                            new_tokens=config.max_frame_tokens,
                                            rows=config.max_rows) + 1))
        selection = Mux(rows == 0, terms["no_rows"], terms["rows"] + rows * terms["per_row"])
        m.d.comb += bound.eq(Mux(mode == MODE_SAVE, terms["save"],
                                 terms["problem"] + (mode == MODE_RESTORE) * terms["restore"]
                                 + new_tokens * terms["per_token"] + selection))
        elapsed = Signal.like(bound)     # cycles since the command's, both included
        with m.If(cmd_taken):
            m.d.sync += elapsed.eq(2)
        with m.Elif(in_flight & (elapsed != (1 << len(elapsed)) - 1)):
            m.d.sync += elapsed.eq(elapsed + 1)
        respond = props.checker(m, "response")
        respond(~status_given | (elapsed <= bound))
        respond(~(status_given & status.rejected)
                | (elapsed == dut.command_cycles + dut.status_cycles))
        respond(~status_given | (status.cycles == elapsed))
        for port in STALL_PORTS:
            respond(~status_given | (status.stall[port] == 0))

        # Reachability.
        props.cover(m, accepted & solving & (rows != 0))
        props.cover(m, given["fetch"])
        props.cover(m, given["context_out"])
        props.cover(m, accepted & (mode == MODE_RESTORE) & ~status.context_invalid
                    & ~status.context_refused)
        props.cover(m, status_given & status.rejected)


def harness(config, kind):
    """The harness of the DRE top for ``config`` proving job kind ``kind``."""
    return DREHarness(config, kind)
