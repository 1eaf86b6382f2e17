"""Hash-bit cluster unit (HCU): Hamming-distance leader clustering of token hashes, in hardware.

The unit is :class:`HashClusterUnit` (:mod:`hw.hcu.unit`, whose docstring explains the
microarchitecture); it is built from named sub-components, each a ``wiring.Component`` with a
test of its own (``tests/test_hw_hcu_parts.py``):

* :class:`TokenRing` (:mod:`hw.hcu.ring`): the tokens in flight, oldest first;
* :class:`Dispatcher` (:mod:`hw.hcu.dispatcher`): the compares started this cycle (a catch-up,
  else the walk of the table) and the walk's progress;
* :class:`FreeLanePicker` (:mod:`hw.hcu.free_lanes`): the lowest-numbered free lanes;
* :class:`LaneIssue` (:mod:`hw.hcu.issue`): the jobs of the previous cycle reach their lanes;
* :class:`SimilarityLane` (:mod:`hw.hcu.lane`): one compare at a time, with early exit;
* :class:`ArgminTree` (:mod:`hw.hcu.argmin`): the best match over the lanes.

The stream payloads are :func:`token_layout`, :func:`assignment_layout` and
:func:`context_command_layout` (:mod:`hw.hcu.layouts`; the context port's words are
:func:`hw.context_port.context_word_layout`).
"""

from hw.hcu.argmin import ArgminTree
from hw.hcu.dispatcher import Dispatcher
from hw.hcu.free_lanes import FreeLanePicker
from hw.hcu.issue import LaneIssue
from hw.hcu.lane import SimilarityLane
from hw.hcu.layouts import assignment_layout, context_command_layout, token_layout
from hw.hcu.ring import TokenRing
from hw.hcu.unit import HashClusterUnit

__all__ = ["token_layout", "assignment_layout", "context_command_layout", "HashClusterUnit", "SimilarityLane", "TokenRing",
           "Dispatcher", "FreeLanePicker", "LaneIssue", "ArgminTree"]
