"""Decode a video clip into square RGB frames sampled at a chosen rate (PyAV).

A streaming video LLM sees frames at a fixed rate (VideoLLM-online: 2 fps in training, 2 to 10
fps at inference). :func:`decode_clip` keeps, for every tick ``k / fps`` of that clock, the first
decoded frame whose presentation time reaches it, and resizes it (the whole picture, aspect ratio
not kept) to ``size`` x ``size`` RGB with FFmpeg's bilinear scaler.
"""

import numpy as np

__all__ = ["decode_clip", "ClipFrames"]


class ClipFrames:
    """Frames of a clip: ``pixels`` uint8 (frames, size, size, 3), ``times`` float64 seconds,
    ``source_fps`` and ``source_size`` (width, height) of the clip."""

    def __init__(self, pixels, times, source_fps, source_size):
        self.pixels, self.times = pixels, times
        self.source_fps, self.source_size = source_fps, source_size


def _positive(name, value, kind):
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive number, not {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive number, not {value!r}")


def decode_clip(path, fps, max_frames=None, size=224):
    """Decode ``path`` at ``fps`` frames per second.

    Parameters
    ----------
    path : str or Path
    fps : float
        Sampling rate; at most the clip's own rate is reached (every decoded frame once).
    max_frames : int or None
        Stop after this many frames (None: the whole clip).
    size : int
        Side of the square output frames (224 for the vision backbone).

    Returns
    -------
    ClipFrames

    Raises
    ------
    ValueError
        If a parameter is out of range or the file holds no video frame.
    """
    import av

    _positive("fps", fps, (int, float))
    _positive("size", size, int)
    if max_frames is not None:
        _positive("max_frames", max_frames, int)
    pixels, times = [], []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        source_fps = float(stream.average_rate) if stream.average_rate else float("nan")
        source_size = (stream.codec_context.width, stream.codec_context.height)
        tick = 0
        for frame in container.decode(stream):
            time = float(frame.time) if frame.time is not None else len(times) / source_fps
            if time + 1e-6 < tick / fps:
                continue
            image = frame.reformat(width=size, height=size, format="rgb24")
            pixels.append(image.to_ndarray())
            times.append(time)
            tick = int(np.floor(time * fps + 1e-6)) + 1
            if max_frames is not None and len(pixels) >= max_frames:
                break
    if not pixels:
        raise ValueError(f"{path}: no video frame decoded")
    return ClipFrames(np.stack(pixels), np.asarray(times), source_fps, source_size)
