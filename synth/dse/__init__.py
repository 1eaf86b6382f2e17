"""Design-space exploration of the DRE on Dask distributed (``make dse``).

``python -m synth.dse --grid GRID`` evaluates every point of a grid of :class:`DREConfig`
parameters (:mod:`synth.dse.grid`) on a Dask cluster: area and critical path from the
synthesis flow, DRE cycles and time per frame from the block twins and the system model,
retrieval quality from the main job (:mod:`synth.dse.point`); results are cached by a content
hash of (point, code version, inputs) (:mod:`synth.dse.run`); the Pareto-optimal points
(:mod:`synth.dse.pareto`) and the reports go to ``build/dse/`` (:mod:`synth.dse.report`).

The package lives in ``synth/`` because it drives the synthesis flow and reads the model:
``synth`` already depends on ``model``, while ``model`` depends on nothing but itself, and
putting the exploration there would make the golden model import the tool flows.
"""
