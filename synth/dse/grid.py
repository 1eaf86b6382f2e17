"""The grid file of a design-space exploration: which configurations to evaluate, on what.

A grid file is JSON (``.json``) or TOML (``.toml``, Python 3.11+) holding one object::

    {"base": "edge",                      # a preset name, or a JSON configuration file
     "grid": {"hcu_lanes": [4, 16], "wicsum_ratio": [0.2, 0.3]},
     "samples": 3, "seed": 0,            # optional: a seeded random sample of the product
     "inputs": {"cache_tokens": [10000, 40000], ...}}   # optional, see INPUT_DEFAULTS

``grid`` maps a :class:`model.config.DREConfig` parameter (or ``wicsum_ratio``, the WiCSum
ratio as a number from 0 to 1 at the base's ``wicsum_ratio_bits``) to a non-empty list of
values; the points are the cross product of the lists, in the order the keys are written (the
last key varies fastest). With ``samples`` = N only N points of the product are kept, drawn
without replacement by a generator seeded with ``seed`` (listed in product order). A base given
as a file is read relative to the grid file's folder.

A malformed file (unreadable, not an object, an unknown or missing key, a wrong type) raises
:class:`ValueError` naming the file and the key. A point that :class:`DREConfig` rejects is not
an error of the file: it is returned with ``DREConfig``'s message and no configuration, so the
exploration reports and skips it.
"""

import dataclasses
import itertools
import json
import math
from pathlib import Path

import numpy as np

from model.config import PRESETS, DREConfig, load_config
from model.stimulus.workload import WORKLOADS

__all__ = ["Grid", "Point", "load_grid", "INPUT_DEFAULTS", "RATIO_KEY"]

#: The pseudo-parameter of the WiCSum ratio (a float, converted to ``wicsum_ratio_code``).
RATIO_KEY = "wicsum_ratio"

#: What every point is evaluated on, and how (overridable under ``inputs`` in the grid file).
INPUT_DEFAULTS = {
    # cached tokens of the DRE cycles and time per frame (the 10K and 40K)
    "cache_tokens": [10000, 40000],
    # synthetic workload streamed to the largest cache size for the cycles (the paper's shape)
    "timing_workload": "videollm",
    # system of model/system/systems.json whose frame time is reported, at batch 1
    "system": "vrex8",
    # synthetic workload of the retrieval quality (model.main.run_job) and how much of it
    "quality_workload": "default",
    "quality_layers": 1,
    "quality_kv_heads": 2,
    "eval_frames": 8,
    # registered blocks whose area and critical path make the point's
    "blocks": ["hcu", "wtu", "buffer", "kvmu"],
    # seed of the hyperplanes and of the workloads
    "seed": 0,
}

_TOP_KEYS = {"base", "grid", "samples", "seed", "inputs"}


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of the grid.

    Members
    -------
    index : int
        Position in the cross product of the grid (0-based).
    params : dict
        The grid's values of this point (``wicsum_ratio`` as given).
    config : DREConfig or None
        The configuration, or None when it is invalid.
    error : str or None
        ``DREConfig``'s message when the point is invalid.
    """

    index: int
    params: dict
    config: DREConfig = None
    error: str = None


@dataclasses.dataclass(frozen=True)
class Grid:
    """A loaded grid file.

    Members
    -------
    path : str
        The file.
    base_name : str
        The base as written (a preset name or the file's path).
    base : DREConfig
    axes : dict of str to list
        The grid's parameters and values, in file order.
    samples : int or None
    seed : int
    inputs : dict
        :data:`INPUT_DEFAULTS` updated by the file's ``inputs``.
    points : list of Point
        Every point kept (valid or not).
    """

    path: str
    base_name: str
    base: DREConfig
    axes: dict
    samples: int
    seed: int
    inputs: dict
    points: list

    @property
    def product_size(self):
        """Points of the full cross product."""
        return math.prod(len(values) for values in self.axes.values())


def _read(path):
    if not path.is_file():
        raise ValueError(f"{path}: no such grid file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(path.read_text())
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                raise ValueError(f"{path}: TOML grid files need Python 3.11 or later; "
                                 f"write the grid as JSON") from None
            return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read the grid file ({error})") from None
    except ValueError as error:  # tomllib.TOMLDecodeError is a ValueError
        raise ValueError(f"{path}: cannot read the grid file ({error})") from None
    raise ValueError(f"{path}: a grid file must end in .json or .toml, not {suffix!r}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _base(path, data):
    if "base" not in data:
        raise ValueError(f"{path}: key 'base' is missing (a preset: {', '.join(PRESETS)}, "
                         f"or a JSON configuration file)")
    base = data["base"]
    if not isinstance(base, str) or not base:
        raise ValueError(f"{path}: key 'base' must be a preset name or a file name, not {base!r}")
    where = base if base in PRESETS else str(path.parent / base)
    try:
        return base, load_config(where)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: key 'base': {error}") from None


def _axes(path, data):
    if "grid" not in data:
        raise ValueError(f"{path}: key 'grid' is missing (parameter -> list of values)")
    grid = data["grid"]
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"{path}: key 'grid' must be a non-empty object of parameter -> "
                         f"list of values, not {grid!r}")
    known = {field.name for field in dataclasses.fields(DREConfig)} | {RATIO_KEY}
    axes = {}
    for name, values in grid.items():
        if name not in known:
            raise ValueError(f"{path}: key 'grid.{name}' is not a DREConfig parameter; "
                             f"known: {', '.join(sorted(known))}")
        if name == RATIO_KEY and "wicsum_ratio_code" in grid:
            raise ValueError(f"{path}: key 'grid.{name}': give wicsum_ratio or "
                             f"wicsum_ratio_code, not both")
        if not isinstance(values, list) or not values:
            raise ValueError(f"{path}: key 'grid.{name}' must be a non-empty list of values, "
                             f"not {values!r}")
        for value in values:
            if isinstance(value, (dict, list)) or value is None:
                raise ValueError(f"{path}: key 'grid.{name}' holds {value!r}; values must be "
                                 f"numbers, booleans or strings")
        if len({json.dumps(value) for value in values}) != len(values):
            raise ValueError(f"{path}: key 'grid.{name}' lists a value twice: {values!r}")
        axes[name] = list(values)
    return axes


def _inputs(path, data):
    given = data.get("inputs", {})
    if not isinstance(given, dict):
        raise ValueError(f"{path}: key 'inputs' must be an object, not {given!r}")
    inputs = json.loads(json.dumps(INPUT_DEFAULTS))
    for name, value in given.items():
        if name not in INPUT_DEFAULTS:
            raise ValueError(f"{path}: key 'inputs.{name}' is unknown; known: "
                             f"{', '.join(INPUT_DEFAULTS)}")
        inputs[name] = value
    sizes = inputs["cache_tokens"]
    if (not isinstance(sizes, list) or not sizes or not all(_is_int(s) and s > 0 for s in sizes)
            or sizes != sorted(set(sizes))):
        raise ValueError(f"{path}: key 'inputs.cache_tokens' must be a list of increasing "
                         f"positive integers, not {sizes!r}")
    for name in ("timing_workload", "quality_workload"):
        if inputs[name] not in WORKLOADS:
            raise ValueError(f"{path}: key 'inputs.{name}' must be one of "
                             f"{', '.join(WORKLOADS)}, not {inputs[name]!r}")
    for name in ("quality_layers", "quality_kv_heads", "eval_frames"):
        if not _is_int(inputs[name]) or inputs[name] < 1:
            raise ValueError(f"{path}: key 'inputs.{name}' must be a positive integer, "
                             f"not {inputs[name]!r}")
    if not _is_int(inputs["seed"]) or inputs["seed"] < 0:
        raise ValueError(f"{path}: key 'inputs.seed' must be a non-negative integer, "
                         f"not {inputs['seed']!r}")
    if not isinstance(inputs["system"], str):
        raise ValueError(f"{path}: key 'inputs.system' must be a system name of "
                         f"model/system/systems.json, not {inputs['system']!r}")
    blocks = inputs["blocks"]
    if (not isinstance(blocks, list) or not blocks
            or not all(isinstance(b, str) for b in blocks)):
        raise ValueError(f"{path}: key 'inputs.blocks' must be a non-empty list of block "
                         f"names, not {blocks!r}")
    return inputs


def point_config(base, params):
    """The configuration of ``params`` over ``base`` (raises ``DREConfig``'s errors)."""
    changes = {name: value for name, value in params.items() if name != RATIO_KEY}
    config = base.replace(**changes) if changes else base
    if RATIO_KEY in params:
        ratio = params[RATIO_KEY]
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool):
            raise TypeError(f"{RATIO_KEY} must be a number from 0 to 1, not {ratio!r}")
        config = config.with_ratio(ratio)
    return config


def load_grid(path):
    """Read, validate and expand a grid file (module docstring); returns a :class:`Grid`.

    Raises
    ------
    ValueError
        If the file is malformed; the message names the file and the key.
    """
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a grid file must hold an object with keys "
                         f"{', '.join(sorted(_TOP_KEYS))}, not {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: key {unknown[0]!r} is unknown; known: "
                         f"{', '.join(sorted(_TOP_KEYS))}")
    base_name, base = _base(path, data)
    axes = _axes(path, data)
    seed = data.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"{path}: key 'seed' must be a non-negative integer, not {seed!r}")
    samples = data.get("samples")
    if samples is not None and (not _is_int(samples) or samples < 1):
        raise ValueError(f"{path}: key 'samples' must be a positive integer, not {samples!r}")
    inputs = _inputs(path, data)
    names = list(axes)
    combos = list(itertools.product(*axes.values()))
    indices = range(len(combos))
    if samples is not None and samples < len(combos):
        indices = sorted(np.random.default_rng(seed).choice(len(combos), samples,
                                                            replace=False).tolist())
    points = []
    for index in indices:
        params = dict(zip(names, combos[index]))
        try:
            points.append(Point(index, params, point_config(base, params)))
        except (ValueError, TypeError) as error:
            points.append(Point(index, params, None, str(error)))
    return Grid(str(path), base_name, base, axes, samples, seed, inputs, points)
