"""Writing split examples as gzip TFRecord shards, in this process or in writer processes.

Each chunk of conformed rows (with its split assignment) is written whole by one writer: chunk ``j`` goes
to writer ``j % workers``, and its rows of split ``s`` are appended to shard ``j % shards[s]`` of that split.
Shard counts are fixed before writing (about ``ROWS_PER_SHARD`` rows each, a multiple of the writer count),
so every writer owns its own shards and the files get TFX's ``-00000-of-00016`` names directly. Encoding
(tfx_bsl), TFRecord framing and gzip take ~3.4 µs of CPU per row against ~0.5 µs for reading and checking,
and framing runs Python code under the GIL, so large inputs are written by ``cpu_count`` writer processes
fed through pipes as Arrow IPC streams; small ones in this process.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from headwater.components import _data, _runtime
from headwater.components.errors import InputDataError

__all__ = [
    "GZIP_LEVEL", "POOL_MIN_BYTES", "ROWS_PER_SHARD", "ShardWriters", "WriterPool", "shard_counts", "writer_count",
]

ROWS_PER_SHARD = 1_000_000
GZIP_LEVEL = 1
#: Inputs at least this big are written by writer processes (starting them costs ~1 s of imports).
POOL_MIN_BYTES = 64 << 20


def writer_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def shard_counts(expected: Mapping[str, float], workers: int) -> dict[str, int]:
    """Shards per split: about ``ROWS_PER_SHARD`` rows each; with writer processes, a multiple of their count."""
    out = {}
    for name, rows in expected.items():
        n = max(1, math.ceil(rows / ROWS_PER_SHARD))
        out[name] = n if workers <= 1 else workers * math.ceil(n / workers)
    return out


class ShardWriters:
    """The shards one writer owns (shard ``k`` of a split belongs to writer ``k % workers``), written as chunks
    arrive; :meth:`close` also writes an owned shard that got no rows (an empty, valid TFRecord file)."""

    def __init__(self, examples_uri: str, split_names: Sequence[str], shards: Mapping[str, int], workers: int = 1,
                 index: int = 0) -> None:
        from tfx_bsl.coders import example_coder

        self.examples_uri, self.split_names, self.shards = examples_uri, list(split_names), dict(shards)
        self.workers, self.index = workers, index
        self.encoder = example_coder.RecordBatchToExamplesEncoder()
        self.open: dict[tuple[str, int], _data.GzipTFRecordWriter] = {}
        self.rows_seen = 0  # the largest chunk written, in rows (what a writer holds at once)

    def _file(self, split: str, k: int) -> _data.GzipTFRecordWriter:
        writer = self.open.get((split, k))
        if writer is None:
            folder = _data.split_uri(self.examples_uri, split)
            _data.makedirs(folder)
            name = f"{_data.EXAMPLES_FILE_PREFIX}-{k:05d}-of-{self.shards[split]:05d}{_data.EXAMPLES_FILE_SUFFIX}"
            writer = self.open[(split, k)] = _data.GzipTFRecordWriter(_data.join(folder, name), level=GZIP_LEVEL)
        return writer

    def write(self, chunk: int, table: Any, target: Any) -> None:
        """Write chunk number ``chunk``: ``target`` is its split index, or every row's (a numpy array)."""
        import pyarrow as pa

        self.rows_seen = max(self.rows_seen, table.num_rows)
        for i, split in enumerate(self.split_names):
            if isinstance(target, int):
                if target != i:
                    continue
                piece = table
            else:
                piece = table.filter(pa.array(target == i))
            if piece.num_rows:
                writer = self._file(split, chunk % self.shards[split])
                for start in range(0, piece.num_rows, _runtime.ENCODE_BATCH_ROWS):
                    writer.write(_runtime.encode_examples(piece.slice(start, _runtime.ENCODE_BATCH_ROWS), self.encoder))

    def close(self) -> dict[str, int]:
        for split in self.split_names:
            for k in range(self.index, self.shards[split], self.workers):
                self._file(split, k)
        counts = {name: 0 for name in self.split_names}
        for (split, _), writer in self.open.items():
            writer.close()
            counts[split] += writer.records
        return counts


def _writer_main(argv: Sequence[str]) -> int:
    """A writer process: ``python -m headwater.components.ingest._write URI SPLITS SHARDS WORKERS INDEX`` reads
    an Arrow IPC stream of chunks on stdin (the split of every row in the last column) and prints its counts."""
    import json
    import sys

    import pyarrow as pa

    workers, index = int(argv[3]), int(argv[4])
    writers = ShardWriters(argv[0], json.loads(argv[1]), json.loads(argv[2]), workers, index)
    with pa.ipc.open_stream(sys.stdin.buffer) as stream:
        for n, batch in enumerate(stream):
            table = pa.Table.from_batches([batch]).drop([_TARGET])
            target = batch.column(batch.num_columns - 1).to_numpy()
            writers.write(n * workers + index, table, target)
    json.dump({"counts": writers.close(), "rows_seen": writers.rows_seen}, sys.stdout)
    return 0


_TARGET = "headwater.split"  # the column that carries each row's split to a writer


class WriterPool:
    """``workers`` writer processes (``python -m``: nothing of the caller's main module runs in them), each fed
    an Arrow IPC stream through its stdin pipe; the pipe's small buffer is the back-pressure, so the reader
    holds at most the chunk it is handing over while each writer holds the one it is writing."""

    def __init__(self, workers: int, examples_uri: str, split_names: Sequence[str], shards: Mapping[str, int]) -> None:
        import json
        import subprocess
        import sys
        import tempfile

        self.split_names = list(split_names)
        self.processes: list[Any] = []
        self.logs: list[Any] = []
        self.streams: list[Any] = [None] * workers
        self.rows_seen = 0
        for i in range(workers):
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
            self.logs.append(log)
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "headwater.components.ingest._write", examples_uri, json.dumps(self.split_names),
                 json.dumps(dict(shards)), str(workers), str(i)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            ))

    def _failed(self, i: int) -> InputDataError:
        p = self.processes[i]
        try:
            p.wait(timeout=30)
        except Exception:
            p.kill()
            p.wait()
        self.logs[i].seek(0)
        text = self.logs[i].read().decode("utf-8", "replace")[-4000:]
        return InputDataError(
            f"Ingest writer process {i} (pid {p.pid}) failed with exit code {p.returncode}"
            f"{' (killed: out of memory?)' if p.returncode and p.returncode < 0 else ''}:\n{text}"
        )

    def write(self, chunk: int, table: Any, target: Any) -> None:
        import numpy as np
        import pyarrow as pa

        i = chunk % len(self.processes)
        if isinstance(target, int):
            target = np.full(table.num_rows, target, dtype=np.int8)
        arrays = [table.column(k).combine_chunks() for k in range(table.num_columns)]
        batch = pa.RecordBatch.from_arrays([*arrays, pa.array(np.asarray(target, dtype=np.int8))],
                                           names=[*table.column_names, _TARGET])
        try:
            if self.streams[i] is None:
                self.streams[i] = pa.ipc.new_stream(self.processes[i].stdin, batch.schema)
            self.streams[i].write_batch(batch)
        except (BrokenPipeError, OSError):
            raise self._failed(i) from None

    def close(self) -> dict[str, int]:
        import json

        total = {name: 0 for name in self.split_names}
        for i, p in enumerate(self.processes):
            try:
                if self.streams[i] is not None:
                    self.streams[i].close()
                p.stdin.close()
            except (BrokenPipeError, OSError):
                raise self._failed(i) from None
        for i, p in enumerate(self.processes):
            out = p.stdout.read()
            if p.wait() != 0:
                raise self._failed(i)
            result = json.loads(out)
            self.rows_seen = max(self.rows_seen, result["rows_seen"])
            for name, n in result["counts"].items():
                total[name] += n
        return total

    def stop(self) -> None:
        """End the writer processes if they still run (after :meth:`close`, they have ended already)."""
        for p in self.processes:
            if p.poll() is None:
                p.kill()
            p.wait()
            for pipe in (p.stdin, p.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
        for log in self.logs:
            log.close()


if __name__ == "__main__":
    import sys

    sys.exit(_writer_main(sys.argv[1:]))
