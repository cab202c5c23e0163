"""Frames (RGB ``uint8`` arrays, all of one size) to an MP4 video or an animated GIF, as bytes (imageio).

- **MP4**: H.264 (``libx264``) in ``yuv420p`` (what every browser and phone plays), at ``fps`` frames a second,
  with the index at the front (``+faststart``: a browser starts playing before the end has come). Both sides must
  be even (yuv420p halves the colour planes); the frames of :mod:`app.render.frame` are. The encoder is the
  ``ffmpeg`` binary of the ``imageio-ffmpeg`` wheel, driven by imageio's FFMPEG plugin.
- **GIF**: each frame quantised to its own 256-colour palette (Pillow's median cut, no dithering: a map's flat
  colours kept within a level or two), shown for ``1000 / fps`` ms, looping forever (``loop=0``). Pillow writes it
  (imageio reads it back in the tests); a frame is held as 1 byte a pixel until the file is written.

Frames are given one by one (an iterable: the caller draws a frame, the encoder takes it); the file is written in
a private temporary folder (mode 0700, made by :mod:`tempfile`) that is removed when the bytes are read, whatever
happens.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["FORMATS", "MEDIA", "encode", "EncodeError"]

FORMATS = ("mp4", "gif")
MEDIA = {"mp4": "video/mp4", "gif": "image/gif"}
#: x264's constant rate factor: 18 is visually lossless for maps and text; 23 is its default.
MP4_CRF = 18


class EncodeError(ValueError):
    """The frames cannot be encoded (none, sizes that differ, odd sides, or the encoder failed), in words."""


def _checked(frame: np.ndarray, size: tuple[int, int] | None, k: int, fmt: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise EncodeError(f"frame {k} is {frame.dtype} of shape {frame.shape}; frames are RGB uint8 (rows, cols, 3)")
    if size is not None and frame.shape[:2] != size:
        raise EncodeError(f"frame {k} is {frame.shape[1]} × {frame.shape[0]} pixels; the first was "
                          f"{size[1]} × {size[0]}")
    if fmt == "mp4" and (frame.shape[0] % 2 or frame.shape[1] % 2):
        raise EncodeError(f"frame {k} is {frame.shape[1]} × {frame.shape[0]} pixels; H.264 in yuv420p needs even "
                          f"sides")
    return np.ascontiguousarray(frame)


def _write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float) -> int:
    import imageio.v2 as imageio

    n, size = 0, None
    writer = imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                                macro_block_size=2, quality=None,
                                output_params=["-crf", str(MP4_CRF), "-movflags", "+faststart"])
    try:
        for frame in frames:
            frame = _checked(frame, size, n, "mp4")
            size = frame.shape[:2]
            writer.append_data(frame)
            n += 1
    finally:
        writer.close()
    return n


def _write_gif(path: Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Write the GIF with Pillow, each frame quantised first.

    imageio's pillow plugin leaves the quantising to Pillow's GIF save, which dithers: several times slower, and
    dithering speckles a map's flat colours.
    """
    from PIL import Image

    n, size = 0, None
    palettes: list[Image.Image] = []
    for frame in frames:
        frame = _checked(frame, size, n, "gif")
        size = frame.shape[:2]
        # each frame its own 256 colours (a local colour table) by the median cut, not dithered: a map's flat
        # colours and the no-data white are kept (the fast octree merges white into the SO2 scale's pale end)
        palettes.append(Image.fromarray(frame, mode="RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                                                     dither=Image.Dither.NONE))
        n += 1
    if n:
        palettes[0].save(path, format="GIF", save_all=True, append_images=palettes[1:], duration=round(1000.0 / fps),
                         loop=0, optimize=False, disposal=1)
    return n


def encode(frames: Iterable[np.ndarray], fmt: str, fps: float = 4.0) -> bytes:
    """The frames as an MP4 (``fmt`` "mp4") or animated GIF ("gif") file's bytes, ``fps`` frames a second.

    Raises :class:`EncodeError` naming what is wrong: an unknown format, fps outside 0.2 … 60, no frame, a frame
    of another size or type, odd sides for MP4, or the encoder's own failure.
    """
    if fmt not in FORMATS:
        raise EncodeError(f"unknown animation format {fmt!r}; formats are {', '.join(FORMATS)}")
    if not 0.2 <= float(fps) <= 60:
        raise EncodeError(f"{fps} frames a second is outside 0.2 … 60")
    with tempfile.TemporaryDirectory(prefix="fumarole-animation-") as folder:
        path = Path(folder) / f"animation.{fmt}"
        try:
            n = (_write_mp4 if fmt == "mp4" else _write_gif)(path, frames, float(fps))
        except EncodeError:
            raise
        except (OSError, RuntimeError) as exc:
            raise EncodeError(f"the {fmt.upper()} encoder failed: {exc}") from None
        if n == 0:
            raise EncodeError("no frame to encode")
        return path.read_bytes()
