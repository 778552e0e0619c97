"""Concurrent first runs on an empty server database: MLMD's schema is created once, and every client
opens the store (issue: 8 of 16 concurrent first runs failed while the schema was being made)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CLIENT = """
import sys
from headwater.metadata import connect
store = connect(sys.argv[1])
store.context("pipeline", "p" + sys.argv[2])
print("ok")
"""


def _first_runs(uri: str, count: int) -> list[subprocess.CompletedProcess[str]]:
    procs = [subprocess.Popen([sys.executable, "-c", CLIENT, uri, str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(count)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


@pytest.mark.parametrize("backend", ["postgres_uri", "mysql_uri"])
def test_concurrent_first_runs_on_an_empty_database_all_open_the_store(backend, request):
    uri = request.getfixturevalue(backend)
    results = _first_runs(uri, 8)
    failed = [r.stderr[-600:] for r in results if r.returncode != 0]
    assert not failed, f"{len(failed)} of 8 clients failed: {failed[0]}"
    from headwater.metadata import connect

    store = connect(uri)
    assert {c.name for c in store.mlmd.get_contexts_by_type("pipeline")} == {f"p{i}" for i in range(8)}


def test_a_database_that_is_not_reachable_says_so(tmp_path):
    from headwater.metadata import connect
    from headwater.metadata.errors import MetadataError

    with pytest.raises(MetadataError, match="Check that the server is running"):
        connect("postgresql://postgres@127.0.0.1:1/nothing")
