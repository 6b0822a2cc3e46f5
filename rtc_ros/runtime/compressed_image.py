"""Compressed camera frames, ROS-free: the payload of a ``sensor_msgs/CompressedImage`` as
image_transport's ``compressed`` plugin sends it (``format`` e.g. ``"rgb8; jpeg compressed bgr8"``,
``"png"``), decoded to ``(h, w, 3)`` uint8 RGB with Pillow. The plugin encodes through OpenCV's
``imencode``, which writes standard JPEG / PNG from its BGR input, so the decoded pixels are RGB (not
checked here against OpenCV itself, which these machines do not have); depth images
(``compressedDepth``) and 16-bit or float pixels are refused.

policy_inference (``camera_transport: compressed``) keeps each received frame as a
:class:`CompressedFrame` and decodes only the frames an observation uses (one per camera and chunk,
not every frame a 30 Hz camera sends); the bag reader decodes recorded ones.
"""

from __future__ import annotations

import io

import numpy as np


def decode_compressed(data: bytes, fmt: str = "") -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB from JPEG / PNG bytes (8 bits per channel; an EXIF orientation is applied, as
    a camera's MJPEG may carry one); ValueError naming ``fmt`` if they do not decode, are another format, or
    hold 16-bit or float pixels (``mono16`` as PNG: converting would clip them, as the raw path refuses them)."""
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise ValueError(f"compressed depth images are not supported (format {fmt!r})")
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError  # pinned in requirements.txt
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ValueError(f"cannot decode compressed images: Pillow is not installed ({exc})") from exc
    what = f"a compressed image (format {fmt!r}, {len(data)} bytes)"
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format not in ("JPEG", "PNG"):
                raise ValueError(f"{what} is {im.format}, not JPEG or PNG")
            if im.mode.startswith("I") or im.mode == "F":
                raise ValueError(f"{what} has {im.mode} pixels (16-bit or float, e.g. mono16): only 8-bit images")
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot decode {what}: {exc}") from exc


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
