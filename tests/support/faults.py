"""Helpers for the fault tests: fill a file system to its last byte."""

from __future__ import annotations

from pathlib import Path


def fill(folder: Path) -> Path:
    """Fill the file system holding ``folder`` to the last byte; returns the filler file (delete it to free)."""
    filler = folder / ".filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 1):
            try:
                while f.write(b"\0" * size):
                    pass
            except OSError:
                pass
    return filler
