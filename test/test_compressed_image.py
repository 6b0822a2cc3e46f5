"""Compressed camera frames (rtc_ros.runtime.compressed_image), ROS-free: what image_transport's
compressed plugin sends decodes to RGB; what does not decode is refused naming the format."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from rtc_ros.runtime.compressed_image import CompressedFrame, decode_compressed, pixels


def _encode(img: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_png_is_exact_jpeg_close_mono_to_rgb() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    out = decode_compressed(_encode(img, "PNG"), "rgb8; png compressed bgr8")
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8 and np.array_equal(out, img)
    smooth = np.zeros((32, 32, 3), dtype=np.uint8)
    smooth[..., 0], smooth[..., 2] = 200, 40  # red stays red (encoded with Pillow: the decoder's channel order)
    jpg = decode_compressed(_encode(smooth, "JPEG", quality=95), "rgb8; jpeg compressed bgr8")
    assert np.abs(jpg.astype(int) - smooth).max() <= 3
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    out = decode_compressed(_encode(gray, "PNG"), "mono8; png compressed ")
    assert out.shape == (8, 8, 3) and all(np.array_equal(out[..., c], gray) for c in range(3))


def test_refused_naming_the_format() -> None:
    with pytest.raises(ValueError, match=r"cannot decode a compressed image \(format 'jpeg', 7 bytes\)"):
        decode_compressed(b"garbage", "jpeg")
    with pytest.raises(ValueError, match="compressed depth images are not supported"):
        decode_compressed(b"whatever", "16UC1; compressedDepth")
    mono16 = _encode(np.full((4, 4), 40000, dtype=np.uint16), "PNG")  # image_transport's png of a mono16 frame
    with pytest.raises(ValueError, match=r"has I;16\w* pixels \(16-bit or float, e.g. mono16\)"):
        decode_compressed(mono16, "mono16; png compressed ")
    gif = _encode(np.zeros((4, 4, 3), dtype=np.uint8), "GIF")
    with pytest.raises(ValueError, match="is GIF, not JPEG or PNG"):
        decode_compressed(gif, "jpeg")


def test_exif_orientation_is_applied() -> None:
    img = np.zeros((2, 4, 3), dtype=np.uint8)
    img[0, 0] = 255  # a white corner to follow
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = decode_compressed(_encode(img, "JPEG", quality=100, exif=exif.tobytes()), "jpeg")
    assert out.shape == (4, 2, 3) and out[0, 1].min() > 200  # the corner is now top right


def test_a_frame_decodes_once_and_only_when_used() -> None:
    img = np.full((4, 5, 3), 7, dtype=np.uint8)
    frame = CompressedFrame(_encode(img, "PNG"), "png")
    assert frame._rgb is None  # stored as received
    first = pixels(frame)
    assert np.array_equal(first, img) and pixels(frame) is first  # cached
    assert pixels(img) is img  # a raw frame is already pixels
    bad = CompressedFrame(b"nope", "jpeg")
    with pytest.raises(ValueError):
        pixels(bad)
