"""An experiment's run directory: an earlier run's outputs are moved aside before a new run writes its own, so that
figures, CSVs and ``results.json`` never mix two runs (an audit: a rerun of one method into the same ``--out`` plotted
the earlier run's traces beside its own and kept the earlier ``differences.csv``)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path


def archive_outputs(out: Path, items: list[Path]) -> Path | None:
    """Move those of ``items`` (files or folders in ``out``) that exist to ``out/previous/<time>/``; nothing is
    deleted. Returns the archive directory, or None when there was nothing to move."""
    present = [item for item in items if item.exists()]
    if not present:
        return None
    dest = out / "previous" / datetime.now().strftime("%Y%m%d_%H%M%S_%f")
    dest.mkdir(parents=True)
    for item in present:
        shutil.move(str(item), str(dest / item.name))
    return dest
