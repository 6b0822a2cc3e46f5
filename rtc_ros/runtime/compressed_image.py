"""Compressed camera frames, ROS-free: the payload of a ``sensor_msgs/CompressedImage`` as
image_transport's ``compressed`` plugin sends it (``format`` e.g. ``"rgb8; jpeg compressed bgr8"``,
``"png"``), decoded to ``(h, w, 3)`` uint8 RGB with Pillow. The plugin encodes through OpenCV, which
writes standard JPEG / PNG whatever the source's channel order, so the decoded pixels are RGB; depth
images (``compressedDepth``) are refused.

policy_inference (``camera_transport: compressed``) keeps each received frame as a
:class:`CompressedFrame` and decodes only the frames an observation uses (one per camera and chunk,
not every frame a 30 Hz camera sends); the bag reader decodes recorded ones.
"""

from __future__ import annotations

import io

import numpy as np


def decode_compressed(data: bytes, fmt: str = "") -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB from JPEG / PNG bytes; ValueError naming ``fmt`` if they do not decode."""
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise ValueError(f"compressed depth images are not supported (format {fmt!r})")
    from PIL import Image, UnidentifiedImageError  # a dependency of matplotlib; pinned in requirements.txt

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"cannot decode a compressed image (format {fmt!r}, {len(data)} bytes): {exc}") from exc


class CompressedFrame:
    """One received compressed frame, decoded on first use (:meth:`rgb`, cached)."""

    __slots__ = ("data", "fmt", "_rgb")

    def __init__(self, data: bytes, fmt: str = "") -> None:
        self.data, self.fmt, self._rgb = bytes(data), str(fmt), None

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = decode_compressed(self.data, self.fmt)
        return self._rgb


def pixels(frame: np.ndarray | CompressedFrame) -> np.ndarray:
    """The ``(h, w, 3)`` pixels of a raw (already decoded) or compressed frame."""
    return frame.rgb() if isinstance(frame, CompressedFrame) else frame
