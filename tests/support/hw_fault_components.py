"""A component for the disk-full tests: while ``flag`` exists it fills the file system of ``filler_dir``,
then succeeds, so that the runner's next metadata write meets a full disk."""

from __future__ import annotations

import os
from pathlib import Path

from faults import fill
from headwater.components import Output, component
from headwater.metadata import types


@component
def fill_disk(data: Output[types.Examples], filler_dir: str = "", flag: str = "") -> None:
    (Path(data.path) / "data.txt").write_text("filled")
    if flag and os.path.exists(flag):
        fill(Path(filler_dir))
