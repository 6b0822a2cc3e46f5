"""Headless offscreen rendering of a :class:`~rtc_ros.sim.bimanual.BimanualSim` (one renderer per image size).

EGL contexts still alive when the interpreter exits make mujoco's EGL teardown raise noisy errors,
so every cache with live renderers is closed by an ``atexit`` hook registered after mujoco's.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref

import mujoco
import numpy as np

logger = logging.getLogger(__name__)

_LIVE: "weakref.WeakSet[RenderCache]" = weakref.WeakSet()
_ATEXIT_REGISTERED = False


def _close_live() -> None:
    # registered after mujoco's own hook => runs before it
    for cache in list(_LIVE):
        cache.close()


def _register_atexit_once() -> None:
    global _ATEXIT_REGISTERED
    if not _ATEXIT_REGISTERED:
        atexit.register(_close_live)
        _ATEXIT_REGISTERED = True


class RenderCache:
    """``mujoco.Renderer`` objects of one model keyed by (width, height), shadows/reflections off."""

    def __init__(self, model: mujoco.MjModel, camera_names: tuple[str, ...]) -> None:
        self.model = model
        self.camera_names = camera_names
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    def render(self, data: mujoco.MjData, camera: str, width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8 image of ``camera`` (see :meth:`BimanualSim.render`)."""
        if camera not in self.camera_names:
            raise ValueError(f"unknown camera {camera!r}; choose from {self.camera_names}")
        vis = self.model.vis.global_
        if not (0 < width <= vis.offwidth) or not (0 < height <= vis.offheight):
            raise ValueError(f"image size {width}x{height} outside 1..{vis.offwidth}x1..{vis.offheight}")
        key = (int(width), int(height))
        renderer = self._renderers.get(key)
        if renderer is None:
            try:
                renderer = mujoco.Renderer(self.model, height=key[1], width=key[0])
            except Exception as exc:
                raise RuntimeError(
                    "headless rendering unavailable (MUJOCO_GL="
                    f"{os.environ.get('MUJOCO_GL')!r}; needs libEGL + Mesa, see "
                    f"scripts/install_system_deps.sh): {exc!r}"
                ) from exc
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            self._renderers[key] = renderer
            _LIVE.add(self)
            _register_atexit_once()
        renderer.update_scene(data, camera=camera)
        return renderer.render()

    def close(self) -> None:
        """Free the GL renderers (safe to call more than once)."""
        for r in self._renderers.values():
            try:
                r.close()
            except Exception:  # pragma: no cover - GL teardown best effort
                logger.debug("renderer close failed", exc_info=True)
        self._renderers.clear()
        _LIVE.discard(self)
