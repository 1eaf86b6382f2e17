"""WiCSum threshold unit (WTU): per query row, the clusters carrying the attention mass, no sort.

The unit is :class:`WiCSumThresholdUnit` (:mod:`hw.wtu.unit`, whose docstring explains the
microarchitecture), its stream payloads :class:`WTULayouts` (:mod:`hw.wtu.layouts`). It is built
from named sub-components, each a ``wiring.Component`` with a test of its own
(``tests/test_hw_wtu_parts.py``):

* :class:`Lane` (:mod:`hw.wtu.lane`): one lane's datapath (address, score, product, bucket,
  row selection) around its memories and bucket lists;
* :class:`LaneMemories` (:mod:`hw.wtu.lane_memories`): one lane's score, count, max-score and
  aggregate memories, read synchronously and ahead (:mod:`hw.wtu.read_ahead`);
* :class:`BucketLists` (:mod:`hw.wtu.bucket_lists`): one lane's per-bucket linked lists and
  their walk (the bucket sorter);
* :class:`RowStatistics` (:mod:`hw.wtu.row_statistics`): weighted sum, min, max, threshold;
* :class:`BucketMasses` (:mod:`hw.wtu.bucket_masses`): the bucket histogram (adder trees);
* :class:`Decision` (:mod:`hw.wtu.decision`): crossing bucket, cutoff, refinement;
* :class:`AggregateEmitter` (:mod:`hw.wtu.aggregate`): the OR over the rows as cluster ids;
* :class:`Sequencer` (:mod:`hw.wtu.sequencer`): the state machine running a problem.

Between the lanes and the rest, :mod:`hw.wtu.lane_links` builds the register stages every
strobe takes to the lanes and every answer takes back.
"""

from hw.wtu.aggregate import AggregateEmitter
from hw.wtu.bucket_lists import BucketLists
from hw.wtu.bucket_masses import BucketMasses
from hw.wtu.decision import Decision
from hw.wtu.lane import Lane
from hw.wtu.lane_memories import LaneMemories
from hw.wtu.layouts import WTULayouts
from hw.wtu.row_statistics import RowStatistics
from hw.wtu.sequencer import Sequencer
from hw.wtu.unit import WiCSumThresholdUnit

__all__ = ["WiCSumThresholdUnit", "WTULayouts", "Lane", "LaneMemories", "BucketLists",
           "RowStatistics", "BucketMasses", "Decision", "AggregateEmitter", "Sequencer"]
