"""The DRE blocks and baselines, by name: the one list every flow reads.

``make verilog``, ``make synth``, ``python -m sim.run``, ``make bench`` and the tests all take the
blocks from :data:`BLOCKS`. One :class:`Block` entry names everything a block brings, as
``module:attribute`` or module strings that the flows import lazily (a slow or broken block does
not stop the others from being listed, and ``hw/`` imports nothing of the verification side):

* ``component``: the ``wiring.Component`` class, constructed with the :class:`DREConfig` alone;
* ``twin``: the module of its bit-exact numpy twin (``INPUTS``, ``OUTPUTS``, ``run_arrays``);
* ``codec``: its payload codec class in :mod:`sim.payloads` (stream beats <-> arrays);
* ``testbench``: its cocotb testbench module (``sim/tb_*.py``, whose ``file_run`` test is the
  RTL engine of ``python -m sim.run``);
* ``bench``: its ``make bench`` section module, if any;
* ``kv_dump``: its file interface reads a KV dump (``python -m sim.run NAME`` takes the dump and
  ``--frames``, ``--layers``, ``--heads`` slices) instead of the twin's ``INPUTS`` arrays;
* ``top``: it composes other registered blocks (reports show it beside them, not in their sum).

Adding a block: its ``hw/`` module, its twin in ``model/twins/``, its codec, its testbench, one
entry here, and its tests (README, "Adding a block").
"""

import dataclasses
import importlib

__all__ = ["Block", "BLOCKS", "blocks", "dump_blocks", "block", "component_class",
           "build_component"]


@dataclasses.dataclass(frozen=True)
class Block:
    """One registered block.

    Parameters
    ----------
    name : str
        Its name in every flow (``sim.run NAME``, ``build/verilog/PRESET/NAME.v``, reports).
    component : str
        ``module:Class`` of the component.
    twin : str or None
        Module of the numpy twin; None for a block without a file interface.
    codec : str or None
        ``module:Class`` of the payload codec.
    testbench : str or None
        Module of the cocotb testbench.
    bench : str or None
        Module of its ``make bench`` section.
    baseline : bool
        A reference design the reports compare the DRE blocks against, not part of the DRE.
    kv_dump : bool
        Its file interface reads a KV dump (the twin's ``run_dump``), not ``INPUTS`` arrays.
    top : bool
        It composes other registered blocks.
    """

    name: str
    component: str
    twin: str = None
    codec: str = None
    testbench: str = None
    bench: str = None
    baseline: bool = False
    kv_dump: bool = False
    top: bool = False

    @staticmethod
    def _load(target):
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module

    def component_class(self):
        """The component class."""
        return self._load(self.component)

    def build(self, config):
        """An instance of the component for ``config``."""
        return self.component_class()(config)

    def twin_module(self):
        """The twin module (``INPUTS``, ``OUTPUTS``, ``run_arrays``)."""
        return self._load(self.twin)

    def make_codec(self):
        """An instance of the payload codec."""
        return self._load(self.codec)()

    @property
    def has_file_interface(self):
        """Whether ``python -m sim.run`` can run the block on ``INPUTS`` arrays (twin, codec and
        testbench; a ``kv_dump`` block reads a KV dump instead, see :func:`dump_blocks`)."""
        return None not in (self.twin, self.codec, self.testbench) and not self.kv_dump


#: The blocks of the DRE in dataflow order, then the baselines.
BLOCKS = {entry.name: entry for entry in (
    Block("hcu", "hw.hcu:HashClusterUnit", twin="model.twins.hcu",
          codec="sim.payloads:HCUCodec", testbench="sim.tb_hcu", bench="sim.bench_hcu"),
    Block("wtu", "hw.wtu:WiCSumThresholdUnit", twin="model.twins.wtu",
          codec="sim.payloads:WTUCodec", testbench="sim.tb_wtu", bench="sim.bench_wtu"),
    Block("buffer", "hw.retrieval_buffer:RetrievalBuffer", twin="model.twins.retrieval_buffer",
          codec="sim.payloads:BufferCodec", testbench="sim.tb_retrieval_buffer"),
    Block("kvmu", "hw.kvmu:KVManagementUnit", twin="model.twins.kvmu",
          codec="sim.payloads:KVMUCodec", testbench="sim.tb_kvmu", bench="sim.bench_kvmu"),
    Block("dre", "hw.dre:DynamicRetrievalEngine", twin="model.twins.dre",
          codec="sim.payloads:DRECodec", testbench="sim.tb_dre", kv_dump=True, top=True),
    Block("topk_sorter", "hw.topk_sorter:TopKSorter", twin="model.twins.topk_sorter",
          codec="sim.payloads:SorterCodec", baseline=True),
)}


def blocks(*, baselines=True, file_interface=False):
    """The registered blocks, in order: all, or without baselines, or those with a file interface."""
    return [entry for entry in BLOCKS.values()
            if (baselines or not entry.baseline)
            and (entry.has_file_interface or not file_interface)]


def dump_blocks():
    """The registered blocks whose file interface reads a KV dump (``kv_dump``)."""
    return [entry for entry in BLOCKS.values() if entry.kv_dump]


def block(name):
    """The :class:`Block` registered as ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not registered.
    """
    if name not in BLOCKS:
        raise ValueError(f"block must be one of {', '.join(BLOCKS)}, not {name!r}")
    return BLOCKS[name]


def component_class(name):
    """The component class of block ``name`` (see :func:`block`)."""
    return block(name).component_class()


def build_component(name, config):
    """An instance of block ``name`` for ``config``."""
    return block(name).build(config)
