"""Formal proofs of the DRE blocks' stream contracts with SymbiYosys (``make formal``).

One harness module per registered block, named as the block in :mod:`hw.registry`
(``sim/formal/hcu.py``, ``wtu.py``, ``buffer.py``): a block's harness joins the proofs by adding
its module. Each module defines

* ``VARIANTS``: name -> :class:`model.config.DREConfig` (the ``tiny`` preset and small variants
  that exercise each parameter path of the block);
* ``JOBS``: variant name -> ``(kind, mode, depth)`` of its SymbiYosys jobs, ``kind`` one of
  :data:`sim.formal.properties.JOB_KINDS`;
* ``QUICK``: the ``(variant, kind)`` jobs ``make test`` runs (the others run in ``make formal``);
* ``harness(config, kind)``: the :class:`sim.formal.properties.FormalHarness`.

:mod:`sim.formal.properties` holds the shared pieces (free inputs, the stream contract,
counters, bounded response, covers), :mod:`sim.formal.sby` runs one job,
``python -m sim.formal`` runs them all and :mod:`sim.formal.mutate` checks that the proofs catch
injected protocol bugs.
"""

import importlib

__all__ = ["harness_module", "planned_jobs"]


def harness_module(block_name):
    """The harness module of block ``block_name``, or None when it has none."""
    try:
        return importlib.import_module(f"sim.formal.{block_name}")
    except ModuleNotFoundError as error:
        if error.name != f"sim.formal.{block_name}":
            raise
        return None


def planned_jobs(module, block_name, *, variants=None, kinds=None, quick=False):
    """The :class:`sim.formal.sby.Job` list of one harness module, filtered.

    Parameters
    ----------
    module : module
        A harness module (see the package docstring).
    block_name : str
    variants, kinds : iterable of str, optional
        Only these variants / job kinds.
    quick : bool
        Only the jobs listed in the module's ``QUICK``.
    """
    from sim.formal.sby import Job

    jobs = []
    for variant, variant_jobs in module.JOBS.items():
        if variants is not None and variant not in variants:
            continue
        for kind, mode, depth in variant_jobs:
            if kinds is not None and kind not in kinds:
                continue
            if quick and (variant, kind) not in module.QUICK:
                continue
            jobs.append(Job(block_name, variant, kind, mode, depth))
    return jobs
