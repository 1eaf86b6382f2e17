"""The V-Rex system model: frame latency, FPS and energy of a streaming video LLM on V-Rex.

Modules, one concept each:

:mod:`model.system.params`
    the validated parameters of the workload (:class:`~model.system.params.ModelShape`) and of a
    system (:class:`~model.system.params.SystemConfig`), read from ``systems.json`` where every
    value carries its source;
:mod:`model.system.retrieval`
    retrieval measured by running ReSV and the peers' rules on a workload or a KV dump at each
    cache size (ratios, fetch runs, cluster statistics, the DRE's cycles);
:mod:`model.system.dre`
    the DRE's cycles of one retrieval problem, composed from the block twins (the one place a
    frame twin of the DRE top will replace), and of one frame;
:mod:`model.system.perf`
    the per-layer roofline, overlaps, KV traffic and energy of one frame;
:mod:`model.system.report`
    the table, ``system.json``, the plots and the comparison with the paper.

``python -m model.system`` runs it all (``make system``).
"""
