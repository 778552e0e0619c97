"""Live status of a run on the console: a redrawn table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from headwater.metadata.conventions import NodeState

__all__ = ["StatusDisplay"]

_SYMBOLS = {
    NodeState.QUEUED: "·", NodeState.RUNNING: "▶", NodeState.CACHED: "≡", NodeState.DONE: "✔",
    NodeState.SKIPPED: "⤼", NodeState.FAILED: "✘", NodeState.CANCELED: "■", NodeState.BLOCKED: "-",
}


class StatusDisplay:
    """Shows every node's state and duration. ``quiet`` prints nothing."""

    def __init__(self, node_ids: list[str], stream: TextIO | None = None, *, quiet: bool = False,
                 title: str = "") -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and self.stream.isatty()
        self.order = list(node_ids)
        self.state: dict[str, str] = {n: NodeState.QUEUED for n in node_ids}
        self.since = {n: time.time() for n in node_ids}
        self.took: dict[str, float] = {}
        self.note: dict[str, str] = {}
        self.start = time.time()
        self.title = title
        self._drawn = 0
        self._last_draw = 0.0
        if title and not quiet:
            print(title, file=self.stream, flush=True)

    def update(self, node_id: str, state: NodeState | str, *, duration: float | None = None, note: str = "") -> None:
        self.state[node_id] = state
        self.since[node_id] = time.time()
        if duration is not None:
            self.took[node_id] = duration
        if note:
            self.note[node_id] = note
        if self.quiet:
            return
        if self.live:
            self.refresh(force=True)
        else:
            took = f" ({duration:.2f}s)" if duration is not None else ""
            extra = f"  {note}" if note else ""
            print(f"[{time.time() - self.start:7.2f}s] {node_id:<24} {state}{took}{extra}", file=self.stream,
                  flush=True)

    def _line(self, node_id: str) -> str:
        state = self.state[node_id]
        if state == NodeState.RUNNING:
            took = time.time() - self.since[node_id]
        else:
            took = self.took.get(node_id, 0.0)
        clock = f"{took:6.2f}s" if state not in (NodeState.QUEUED, NodeState.BLOCKED) else "       "
        note = self.note.get(node_id, "")
        return f" {_SYMBOLS.get(state, '?')} {node_id:<28} {state:<9} {clock}  {note}"[:160]

    def refresh(self, *, force: bool = False) -> None:
        if not self.live or (not force and time.time() - self._last_draw < 0.2):
            return
        self._last_draw = time.time()
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")
        for n in self.order:
            out.append("\x1b[2K" + self._line(n) + "\n")
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn = len(self.order)

    def close(self, summary: str) -> None:
        if self.quiet:
            return
        self.refresh(force=True)
        print(summary, file=self.stream, flush=True)
