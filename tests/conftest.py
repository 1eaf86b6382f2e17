"""Test selection and order.

Selection: the ``pdk`` tests need a real PDK (``PDK_ROOT``). Without ``PDK_ROOT`` in the
environment they are *deselected* (reported as such by pytest), not skipped: a run without the
PDK does not count them as passed. CI sets ``PDK_ROOT=../shared/pdk`` (``.ci/run``), so CI runs
them.

Order: the tests marked ``slow`` (half a minute or more each) come first, in collection order,
the others after them in theirs: ``pytest -n`` starts the long tests first, the short ones
fill in behind them, and its two workers finish close together.
"""

import os


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("PDK_ROOT"):
        deselected = [item for item in items if item.get_closest_marker("pdk")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.get_closest_marker("pdk")]
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_report_header(config):
    if os.environ.get("PDK_ROOT"):
        return f"pdk tests: on, PDK_ROOT={os.environ['PDK_ROOT']}"
    return "pdk tests: deselected (PDK_ROOT unset; CI sets PDK_ROOT=../shared/pdk)"

