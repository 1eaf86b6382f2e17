"""The DRE blocks and baselines, by name: what ``make verilog``, ``make synth`` and ``sim.run`` cover.

A new block joins every flow by one line in :data:`BLOCKS` (or :data:`BASELINES`): the name, and
the ``module:Class`` of a ``wiring.Component`` whose constructor takes the :class:`DREConfig` as
its only positional argument. The flows import lazily, so a slow or broken block does not stop
the others from being listed.
"""

import importlib

__all__ = ["BLOCKS", "BASELINES", "component_class", "build_component"]

#: The blocks of the DRE, in dataflow order.
BLOCKS = {
    "hcu": "hw.hcu:HashClusterUnit",
    "wtu": "hw.wtu:WiCSumThresholdUnit",
    "buffer": "hw.retrieval_buffer:RetrievalBuffer",
}

#: Reference designs the reports compare the DRE blocks against.
BASELINES = {
    "topk_sorter": "hw.topk_sorter:TopKSorter",
}


def component_class(name):
    """The component class registered as ``name`` in :data:`BLOCKS` or :data:`BASELINES`.

    Raises
    ------
    ValueError
        If ``name`` is not registered.
    """
    target = {**BLOCKS, **BASELINES}.get(name)
    if target is None:
        raise ValueError(f"block must be one of {', '.join({**BLOCKS, **BASELINES})}, not {name!r}")
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_component(name, config):
    """An instance of block ``name`` for ``config``."""
    return component_class(name)(config)
