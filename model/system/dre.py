"""The DRE's cycles for the system model, from the DRE's frame twin.

One retrieval problem (one layer, KV head and frame of one stream) is timed by the frame twin of
the DRE top (:class:`model.twins.dre.DRETwin`, the one place that composes the HCU, KVMU and WTU
twins into the top's schedule). The twin keeps the stream's context (HCU table, KVMU layout), so
:class:`StreamCycles` runs every frame of a sampled stream through it: untimed (no score rows)
up to a timed frame, then timed with the frame's quantised scores from the ReSV model (the LXE's
rows: the DRE's clustering is checked equal to ReSV's).

:func:`frame_cycles` spreads the problems of one layer over the DREs (one per core) and adds the
layers: ``sum over layers of ceil(kv_heads * batch / cores) * cycles of the layer's problem``.
"""

import math

import numpy as np

from model.twins.dre import Command, DRETwin

__all__ = ["StreamCycles", "frame_cycles"]


class _ResvLXE:
    """The LXE of a timed problem: the ReSV model's quantised scores of the frame."""

    def __init__(self, step):
        self._step = step

    @property
    def rows(self):
        return 0 if self._step is None else len(self._step.scores)

    def assignments(self, cluster):
        if self._step is not None and not np.array_equal(cluster, self._step.cluster):
            raise AssertionError("the DRE frame twin and the ReSV model cluster the frame "
                                 "differently")

    def score_rows(self, clusters):
        return self._step.scores


class StreamCycles:
    """The frame twin on one (layer, KV head) stream, frame by frame.

    Parameters
    ----------
    config : model.config.DREConfig
    layer, kv_head : int
    """

    def __init__(self, config, layer, kv_head):
        self._twin = DRETwin(config)
        self._layer, self._kv_head = int(layer), int(kv_head)
        self._frames = 0

    def frame(self, hashes, step=None):
        """Run the stream's next frame; ``step`` (a :class:`model.reference.resv.FrameStep` of the
        same frame) times it.

        Returns
        -------
        dict or None
            For a timed frame: ``hcu``, ``kvmu``, ``wtu``, ``top`` (the top's adapter cycles)
            and ``total`` cycles, ``descriptors`` (fetch descriptors); None otherwise.

        Raises
        ------
        AssertionError
            If the frame twin's clusters differ from the ReSV model's, or its selection misses
            a cluster exact WiCSum selects.
        """
        lxe = _ResvLXE(step)
        command = Command(self._layer, self._kv_head, self._frames, len(hashes), lxe.rows,
                          restart=self._frames == 0)
        result = self._twin.problem(command, hashes, lxe, timed=step is not None)
        if result.rejected:
            raise ValueError(f"the frame twin rejected frame {self._frames}: "
                             f"{len(hashes)} tokens, {lxe.rows} rows")
        self._frames += 1
        if step is None:
            return None
        if not np.array_equal(result.selected | step.selected, result.selected):
            raise AssertionError("the WTU twin's selection misses a cluster exact WiCSum selects")
        phases = result.phase_cycles
        top = phases["command"] + phases["handoff"] + phases["status"]
        return {"hcu": phases["hcu"], "kvmu": phases["kvmu"], "wtu": phases["wtu"], "top": top,
                "total": result.cycles, "descriptors": len(result.descriptors)}


def frame_cycles(layer_problem_cycles, kv_heads, batch, cores):
    """DRE cycles of one frame of a batch: the problems of a layer spread over ``cores`` DREs.

    Parameters
    ----------
    layer_problem_cycles : sequence of float
        Cycles of one problem of each layer.
    kv_heads, batch, cores : int
        Problems per layer are ``kv_heads * batch``, run ``cores`` at a time.

    Returns
    -------
    float
        ``sum(ceil(kv_heads * batch / cores) * cycles)`` over the layers.
    """
    for name, value in (("kv_heads", kv_heads), ("batch", batch), ("cores", cores)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    rounds = math.ceil(kv_heads * batch / cores)
    return float(rounds * sum(layer_problem_cycles))
