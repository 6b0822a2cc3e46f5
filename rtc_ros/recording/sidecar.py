"""The episode's metadata beside its bag (ROS-free): the JSON sidecar ``<bag>/<bag>.json`` and the copy
in ``metadata.yaml`` ``custom_data[rtc_episode]``, written atomically and durably.

The sidecar is rewritten while an episode runs (start, parameters, stop); ``metadata.yaml`` gets its
copy when :class:`rtc_ros.recording.bag.BagWriter` closes the bag (and again for a score given after that). Readers take the sidecar and
fall back to ``metadata.yaml``; :mod:`rtc_ros.recording.recover` compares the two.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: key of the episode metadata (JSON string) in metadata.yaml ``custom_data``
EPISODE_META_KEY = "rtc_episode"


def sidecar_path(bag_dir: str | Path) -> Path:
    """``<bag_dir>/<bag_name>.json``: the sidecar next to the ``.mcap`` file."""
    bag_dir = Path(bag_dir)
    return bag_dir / f"{bag_dir.name}.json"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def fsync_dir(directory: str | Path) -> None:
    """Make the entries of ``directory`` (new or renamed files) durable; best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_durably(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically and durably (temp file, fsync, rename, fsync of the directory),
    so a reader never sees half a file, even after a power loss."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # (a full disk: no empty .tmp left beside the file)
        raise
    fsync_dir(path.parent)


def write_sidecar(bag_dir: str | Path, meta: dict[str, Any]) -> Path:
    """Atomically and durably write the sidecar JSON (:func:`_write_durably`)."""
    path = sidecar_path(bag_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_durably(path, json.dumps(json_safe(meta), indent=2, sort_keys=False, default=_json_default))
    return path


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinite floats as null: JSON has no such numbers (Python would write bare ``NaN``,
    which other readers refuse); a parameter snapshot or the simulator's status may hold one (a review)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalars and arrays (a review)
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def read_sidecar(bag_dir: str | Path) -> dict[str, Any] | None:
    """The sidecar of ``bag_dir``, else the ``custom_data`` copy in ``metadata.yaml``, else None."""
    bag_dir = Path(bag_dir)
    path = sidecar_path(bag_dir)
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            log.warning("sidecar %s is not valid JSON (%s); trying metadata.yaml", path, exc)
    return read_metadata_yaml_meta(bag_dir)


def read_metadata_yaml_meta(bag_dir: str | Path) -> dict[str, Any] | None:
    """The episode metadata copied into ``metadata.yaml`` (``custom_data[rtc_episode]``) when the bag was
    closed; None when that file is missing, unreadable or has none."""
    meta_yaml = Path(bag_dir) / "metadata.yaml"
    if not meta_yaml.is_file():
        return None
    import yaml

    try:
        info = yaml.safe_load(meta_yaml.read_text()) or {}
        custom = (info.get("rosbag2_bagfile_information") or {}).get("custom_data") or {}
        if EPISODE_META_KEY in custom:
            meta = json.loads(custom[EPISODE_META_KEY])
            return meta if isinstance(meta, dict) else None
    except (yaml.YAMLError, json.JSONDecodeError, AttributeError) as exc:
        log.warning("cannot read episode metadata from %s: %s", meta_yaml, exc)
    return None


def update_metadata_yaml_meta(bag_dir: str | Path, meta: dict[str, Any]) -> bool:
    """Replace the episode metadata copy in a closed bag's ``metadata.yaml`` (a score given after the close),
    atomically and durably like the sidecar, the rest of the file unchanged. False (nothing written) when
    the file is missing or not valid rosbag2 bag information."""
    import yaml

    meta_yaml = Path(bag_dir) / "metadata.yaml"
    if not metadata_yaml_valid(bag_dir):
        return False
    info = yaml.safe_load(meta_yaml.read_text())
    bag_info = info["rosbag2_bagfile_information"]
    custom = bag_info.get("custom_data")
    bag_info["custom_data"] = {**(custom if isinstance(custom, dict) else {}),
                               EPISODE_META_KEY: json.dumps(json_safe(meta), default=_json_default)}
    _write_durably(meta_yaml, yaml.safe_dump(info, sort_keys=False))
    return True


def metadata_yaml_valid(bag_dir: str | Path) -> bool:
    """Whether ``metadata.yaml`` exists and parses as rosbag2 bag information (an empty or cut file, e.g.
    after a power loss, does not)."""
    meta_yaml = Path(bag_dir) / "metadata.yaml"
    if not meta_yaml.is_file():
        return False
    import yaml

    try:
        info = yaml.safe_load(meta_yaml.read_text())
    except (yaml.YAMLError, OSError):
        return False
    return isinstance(info, dict) and isinstance(info.get("rosbag2_bagfile_information"), dict)
