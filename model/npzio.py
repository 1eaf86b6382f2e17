"""Validated ``.npz`` input and output of the block file interface (``python -m sim.run``).

Each block declares its arrays as :class:`ArraySpec` rows; :func:`load_arrays` checks that a file
holds exactly what the block needs and names the file and the key in every error, so a malformed
trace never reaches a model or a simulation.
"""

import dataclasses
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

__all__ = ["ArraySpec", "load_arrays", "save_arrays", "check_arrays"]

_KIND_TEXT = {"u": "unsigned integers", "i": "integers", "f": "floats", "b": "booleans"}


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """One array of a block's ``.npz`` interface.

    Parameters
    ----------
    name : str
        Key in the ``.npz`` file.
    kind : str
        ``"u"`` unsigned integers (any non-negative integer array is accepted), ``"i"`` integers,
        ``"f"`` floats, ``"b"`` booleans (0/1 integers are accepted).
    ndim : int
        Number of dimensions.
    doc : str
        What the array holds, for the README and ``--help``.
    optional : bool
        Whether the key may be missing.
    """

    name: str
    kind: str
    ndim: int
    doc: str
    optional: bool = False


def _convert(source, spec, array):
    where = f"{source}: key {spec.name!r}"
    if array.ndim != spec.ndim:
        raise ValueError(f"{where} must have {spec.ndim} dimension(s), not shape {array.shape}")
    if spec.kind == "f":
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{where} must hold floats, not dtype {array.dtype}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{where} holds NaN or infinite values")
        return array.astype(np.float64)
    if spec.kind == "b":
        if array.dtype.kind not in "biu" or (array.size and not np.isin(array, (0, 1)).all()):
            raise ValueError(f"{where} must hold booleans (0 or 1)")
        return array.astype(bool)
    if array.dtype.kind not in "iub":
        raise ValueError(f"{where} must hold {_KIND_TEXT[spec.kind]}, not dtype {array.dtype}")
    if spec.kind == "u" and array.size and array.min() < 0:
        raise ValueError(f"{where} must hold unsigned integers, found {array.min()}")
    if spec.kind == "i" and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{where} must hold integers below 2**63, found {array.max()}")
    return array.astype(np.int64) if spec.kind == "i" else array.astype(np.uint64)


def check_arrays(source, specs, arrays):
    """Validate and convert a dict of arrays against ``specs``.

    Returns
    -------
    dict
        Unsigned arrays as ``uint64``, integer arrays as ``int64``, floats as ``float64``,
        booleans as ``bool``; optional keys that are missing are left out.

    Raises
    ------
    ValueError
        Naming ``source`` and the key: a missing or unknown key, a wrong number of dimensions,
        a wrong dtype, negative unsigned values, non-finite floats.
    """
    known = {spec.name for spec in specs}
    unknown = sorted(set(arrays) - known)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}; "
                         f"expected {', '.join(sorted(known))}")
    result = {}
    for spec in specs:
        if spec.name not in arrays:
            if spec.optional:
                continue
            raise ValueError(f"{source}: missing key {spec.name!r} ({spec.doc})")
        result[spec.name] = _convert(source, spec, np.asarray(arrays[spec.name]))
    return result


def load_arrays(path, specs):
    """Load a ``.npz`` file and validate it against ``specs`` (see :func:`check_arrays`).

    Raises
    ------
    ValueError
        If the file is missing, is not a ``.npz`` archive, or does not match ``specs``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    # The file is opened here, not by numpy, so that it is closed on every error (numpy keeps
    # its own handle open when the archive is not a readable zip).
    arrays = {}
    with open(path, "rb") as stream:
        try:
            archive = np.load(stream, allow_pickle=False)
        except _READ_ERRORS as error:
            raise ValueError(f"{path}: not a readable .npz file ({_one_line(error)})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: is a single .npy array, not a .npz archive")
        with archive:
            for key in archive.files:
                try:
                    arrays[key] = archive[key]
                except _READ_ERRORS as error:
                    raise ValueError(f"{path}: key {key!r} is not a readable array "
                                     f"({_one_line(error)})") from None
    return check_arrays(str(path), specs, arrays)


#: What numpy raises on a damaged, truncated or pickled archive member.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError,
                NotImplementedError)


def _one_line(error):
    return " ".join(str(error).split())


def save_arrays(path, arrays):
    """Write ``arrays`` (a dict of numpy arrays) to a compressed ``.npz`` file, creating folders.

    The file is written under a temporary name beside ``path`` and renamed, so an interrupted
    write leaves no partial file at ``path``; ``path`` is used as given (no ``.npz`` appended).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as stream:
            np.savez_compressed(stream, **arrays)
        temporary.replace(path)
    finally:
        if temporary.exists():
            temporary.unlink()
