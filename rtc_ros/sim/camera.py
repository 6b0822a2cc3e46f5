"""The ``workspace`` camera: a small top-down RGB view of the table used by the sim policy (ROS-free).

The same renderer serves the ``bimanual_sim`` node (published on ``cam_high/image_raw``) and the
offline demonstration generator, so training images and live images are pixel-identical.
Default: 32 x 32 pixels looking straight down at (0.1, 0.5, 0) m from 0.55 m -- the cube's spawn
area (x 0..0.2 m, y 0.4..0.6 m) is fully visible and the 40 mm cube covers about 3 x 3 pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # headless; must precede the mujoco import

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

WORKSPACE = "workspace"


@dataclass(frozen=True)
class CameraConfig:
    """Camera settings (sizes in pixels, distances in metres, angles in degrees)."""

    camera: str = WORKSPACE
    width: int = 32
    height: int = 32
    lookat: tuple[float, float, float] = (0.1, 0.5, 0.0)
    distance: float = 0.55
    azimuth: float = 90.0
    elevation: float = -90.0


@dataclass
class CameraRenderer:
    """Offscreen renderer of one camera of a MuJoCo model; create and use it in one thread (EGL).

    Args:
        model: the ``mujoco.MjModel`` (e.g. ``BimanualSim.model``).
        config: which camera and image size.
    """

    model: Any
    config: CameraConfig = field(default_factory=CameraConfig)

    def __post_init__(self) -> None:
        c = self.config
        if c.camera == WORKSPACE:
            cam = mujoco.MjvCamera()
            cam.type = mujoco.mjtCamera.mjCAMERA_FREE
            cam.lookat[:] = c.lookat
            cam.distance, cam.azimuth, cam.elevation = c.distance, c.azimuth, c.elevation
            self._cam: Any = cam
        else:
            names = [mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(self.model.ncam)]
            if c.camera not in names:
                raise ValueError(f"unknown camera {c.camera!r}: use {WORKSPACE!r} or one of {names}")
            self._cam = c.camera
        self._renderer = mujoco.Renderer(self.model, height=c.height, width=c.width)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def render(self, data: Any) -> np.ndarray:
        """``(height, width, 3)`` uint8 RGB image of ``data`` (a ``mujoco.MjData``)."""
        self._renderer.update_scene(data, camera=self._cam)
        return self._renderer.render()

    def close(self) -> None:
        """Free the GL context (same thread that created it)."""
        try:
            self._renderer.close()
        except Exception:  # noqa: BLE001 -- GL teardown best effort
            pass
