"""Pareto-optimal points of a design-space exploration.

A point *dominates* another when it is at least as good in every objective and strictly better
in one; the Pareto front is the set of points no other point dominates. Points lacking a value
of an objective (a failed step) take no part.
"""

__all__ = ["pareto_front", "dominates", "FRONTS"]

#: The fronts of the report: name -> objectives ``(metric, "min" | "max")``, x axis first.
FRONTS = {
    "area_time": (("area", "min"), ("dre_us", "min")),
    "recall_tokens": (("tokens_retrieved", "min"), ("recall", "max")),
}


def _oriented(values, objectives):
    """The values with every objective turned into one to minimise."""
    return tuple(value if sense == "min" else -value
                 for value, (_, sense) in zip(values, objectives))


def dominates(first, second, objectives):
    """True when ``first`` dominates ``second`` (dicts of metrics) under ``objectives``."""
    a = _oriented([first[name] for name, _ in objectives], objectives)
    b = _oriented([second[name] for name, _ in objectives], objectives)
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_front(points, objectives):
    """Indices (into ``points``) of the Pareto-optimal points, in input order.

    Parameters
    ----------
    points : list of dict
        Metric name -> number; a point missing an objective, or holding None for it, is left
        out.
    objectives : sequence of (str, str)
        ``(metric, "min")`` or ``(metric, "max")``.

    Raises
    ------
    ValueError
        If an objective's sense is neither ``"min"`` nor ``"max"``, or there is no objective.
    """
    if not objectives:
        raise ValueError("objectives must name at least one metric")
    for name, sense in objectives:
        if sense not in ("min", "max"):
            raise ValueError(f"objective {name!r} must be 'min' or 'max', not {sense!r}")
    usable = [i for i, point in enumerate(points)
              if all(point.get(name) is not None for name, _ in objectives)]
    return [i for i in usable
            if not any(dominates(points[j], points[i], objectives) for j in usable if j != i)]
