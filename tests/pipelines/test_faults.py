"""The fault campaign's fast part: two stores over one root, empty store files, foreign files at output
paths, scratch folders, a metadata store on a full disk, and concurrent first runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import hw_test_components as c
import pytest
from faults import fill
from headwater.metadata import ArtifactState, connect
from headwater.metadata.errors import ExecutionError, MetadataError, MetadataWriteError
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.ownership import ROOT_MARKER

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def chain(root: Path, metadata: str | None = None, flag: str = "") -> Pipeline:
    a = c.produce(value="a").with_id("A")
    b = c.fail_if_file(examples=a.outputs.data, flag=flag).with_id("B")
    return Pipeline(name="chain", root=str(root), nodes=[a, b], metadata=metadata)


def run(pipeline: Pipeline, **kwargs):
    return LocalRunner(quiet=True, max_workers=1).run(pipeline, **kwargs)


def live_without_files(uri: str) -> list[str]:
    store = connect(uri, readonly=uri.startswith("sqlite"))
    return [p.uri for p in store.mlmd.get_artifacts() if p.state == ArtifactState.LIVE and not Path(p.uri).is_dir()]


def test_a_second_store_over_one_root_is_refused_and_deletes_nothing(tmp_path, postgres_uri):
    root = tmp_path / "root"
    first = run(chain(root))
    assert first.ok
    sqlite = f"sqlite:///{root / 'metadata.sqlite'}"
    files = sorted(p for p in root.rglob("*") if p.is_file() and "metadata.sqlite" not in p.name)
    # The second store's B fails (the flag exists): before, it deleted root/B/model/2, a LIVE artifact of
    # the first store, because both stores number their executions from 1.
    flag = tmp_path / "flag"
    flag.write_text("x")
    with pytest.raises(MetadataError, match=r"pipeline root .* belongs to metadata store sqlite:///.*not to "
                                            r"postgresql://postgres@127\.0\.0\.1:5432/hw_"):
        run(chain(root, postgres_uri, flag=str(flag)))
    assert sorted(p for p in root.rglob("*") if p.is_file() and "metadata.sqlite" not in p.name) == files
    assert live_without_files(sqlite) == []
    assert run(chain(root)).ok  # the owner goes on as before


def test_a_new_store_after_the_old_one_was_deleted_is_refused(tmp_path):
    root = tmp_path / "root"
    assert run(chain(root)).ok
    (root / "metadata.sqlite").unlink()
    for extra in ("metadata.sqlite-wal", "metadata.sqlite-shm"):
        (root / extra).unlink(missing_ok=True)
    with pytest.raises(MetadataError, match="belongs to metadata store"):
        run(chain(root))
    assert "store_id" in (root / ROOT_MARKER).read_text()


def test_an_empty_store_file_is_refused_unless_creation_is_asked_for(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "metadata.sqlite").write_bytes(b"")
    with pytest.raises(MetadataError, match=r"metadata.sqlite is empty \(0 bytes\)"):
        run(chain(root))
    assert (root / "metadata.sqlite").stat().st_size == 0 and not (root / "A").exists()
    store = connect(f"sqlite:///{root / 'metadata.sqlite'}", create=True)
    assert store.mlmd.get_artifacts() == [] and (root / "metadata.sqlite").stat().st_size > 0


def test_files_already_at_an_output_path_are_neither_used_nor_deleted(tmp_path):
    root = tmp_path / "root"
    foreign = root / "A" / "data" / "1" / "theirs.txt"  # what the first execution (id 1) would be given
    foreign.parent.mkdir(parents=True)
    foreign.write_text("not yours")
    result = run(chain(root))
    assert result.nodes["A"].state == "failed"
    assert "already holds files that execution 1" in (result.nodes["A"].error or "")
    assert foreign.read_text() == "not yours"
    store = connect(f"sqlite:///{root / 'metadata.sqlite'}")
    assert [store.record(e).state for e in store.mlmd.get_executions()] == ["FAILED"]
    with pytest.raises(ExecutionError):
        result.raise_for_status()


def test_scratch_folders_are_removed_when_a_run_ends(tmp_path):
    root = tmp_path / "root"
    assert run(chain(root)).ok
    assert not (root / "_tmp").exists()
    flag = tmp_path / "flag"
    flag.write_text("x")
    failed = LocalRunner(quiet=True, cache=False).run(chain(root, flag=str(flag)))
    assert not failed.ok and not (root / "_tmp").exists()
    # Left by a run killed before it could clean up: execution 1 is over, so the next run removes it.
    (root / "_tmp" / "1").mkdir(parents=True)
    (root / "_tmp" / "1" / "scratch.bin").write_bytes(b"x")
    assert run(chain(root)).ok and not (root / "_tmp").exists()


def test_concurrent_first_runs_share_one_new_store_and_root(tmp_path):
    root = tmp_path / "root"
    env = {**os.environ, "HW_TEST_ROOT": str(root), "PYTHONPATH": str(SUPPORT)}
    procs = [subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "run",
                               str(SUPPORT / "crash_pipeline.py"), "--workers", "1", "--quiet"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert live_without_files(f"sqlite:///{root / 'metadata.sqlite'}") == []
    assert not list(root.glob(".metadata.sqlite.*")) and not (root / "_tmp").exists()


# ------------------------------------------------------------------------------- a full disk
def test_a_full_disk_under_the_store_ends_the_run_with_one_clear_message(tmp_path, tmpfs):
    root = tmpfs(6 * 1024, name="disk") / "root"
    path = tmp_path / "pipe.py"
    path.write_text(
        "import hw_test_components as c\nfrom headwater.pipelines import Pipeline\n"
        f"a = c.produce(value='a').with_id('A')\nb = c.consume(examples=a.outputs.data).with_id('B')\n"
        f"pipeline = Pipeline(name='full', root={str(root)!r}, nodes=[a, b])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "headwater.pipelines.cli", "run", str(path), "--quiet",
                               *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    assert cli().returncode == 0
    filler = fill(root)
    full = cli("--no-cache")
    assert full.returncode != 0
    assert "Traceback" not in full.stderr and "Transaction already open" not in full.stderr
    clear = ("writing to metadata store sqlite:///", "No space left", "the disk holding it is full")
    assert any(text in full.stderr for text in clear), full.stderr
    assert full.stderr.count("headwater: error:") <= 1, full.stderr
    filler.unlink()
    again = cli("--no-cache")
    assert again.returncode == 0, again.stdout + again.stderr
    assert live_without_files(f"sqlite:///{root / 'metadata.sqlite'}") == []


def test_a_metadata_write_failing_mid_run_ends_it_cleanly_and_the_rerun_recovers(tmp_path, tmpfs):
    disk = tmpfs(8 * 1024, name="disk")
    root = disk / "root"
    flag = tmp_path / "fill"
    flag.write_text("x")
    path = tmp_path / "pipe.py"
    path.write_text(
        "import hw_fault_components as f\nimport hw_test_components as c\n"
        "from headwater.pipelines import Pipeline\n"
        f"a = f.fill_disk(filler_dir={str(disk)!r}, flag={str(flag)!r}).with_id('A')\n"
        "b = c.consume(examples=a.outputs.data).with_id('B')\n"
        f"pipeline = Pipeline(name='midrun', root={str(root)!r}, nodes=[a, b])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    done = subprocess.run([sys.executable, "-m", "headwater.pipelines.cli", "run", str(path), "--quiet"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "Transaction already open" not in done.stderr, done.stderr
    assert "headwater: error: writing to metadata store sqlite:///" in done.stderr, done.stderr
    (disk / ".filler").unlink()
    store_uri = f"sqlite:///{root / 'metadata.sqlite'}"
    assert live_without_files(store_uri) == []
    flag.unlink()
    again = subprocess.run([sys.executable, "-m", "headwater.pipelines.cli", "run", str(path)],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    store = connect(store_uri)
    states = sorted(store.record(e).state for e in store.mlmd.get_executions())
    assert "RUNNING" not in states and "FAILED" in states  # the interrupted execution was recovered
    assert live_without_files(store_uri) == []


def test_a_failed_write_leaves_the_connection_usable(tmp_path, tmpfs):
    disk = tmpfs(4 * 1024, name="disk")
    store = connect(f"sqlite:///{disk / 'm.sqlite'}")
    store.context("pipeline", "before")
    filler = fill(disk)
    with pytest.raises(MetadataWriteError, match=r"writing to metadata store sqlite:///.*m\.sqlite failed "
                                                 r"\(put_contexts\): .*full"):
        store.context("pipeline", "x" * 200_000)
    filler.unlink()
    # No "Transaction already open": the connection was reopened after the failed COMMIT.
    store.context("pipeline", "after")
    names = {ctx.name for ctx in store.mlmd.get_contexts()}
    assert {"before", "after"} <= names and "x" * 200_000 not in names


# ------------------------------------------------------------------------------- range checks
def test_worker_and_step_counts_outside_their_range_are_clear_errors(tmp_path):
    from headwater.components.api import ExecutionContext
    from headwater.components.train import MAX_STEPS, Train
    from headwater.metadata import types
    from headwater.metadata.errors import InputDataError, ParameterError

    with pytest.raises(ParameterError, match=r"max_workers is -3; give a number of worker processes, 1 or more"):
        LocalRunner(max_workers=-3)
    examples = types.Examples(str(tmp_path / "ex"))
    for split in ("train", "eval"):
        (tmp_path / "ex" / f"Split-{split}").mkdir(parents=True)
    ctx = ExecutionContext("p", str(tmp_path), "r", "Train", 1, str(tmp_path / "tmp"))
    for name, steps in (("train_steps", 99999999999999999999999), ("eval_steps", 0)):
        with pytest.raises(InputDataError, match=rf"{name} is {steps}; give a number of steps from 1 to {MAX_STEPS}"):
            Train.fn(examples=[examples], model=types.Model(str(tmp_path / "m")),
                     model_run=types.ModelRun(str(tmp_path / "r")), module_file="x.py", ctx=ctx, **{name: steps})


def test_an_object_store_root_belongs_to_one_store_too(object_root, tmp_path):
    from headwater.components import storage

    first = f"sqlite:///{tmp_path / 'first.sqlite'}"
    assert run(chain(object_root, first)).ok
    before = sorted(storage.list_files(object_root))
    assert storage.join(object_root, ROOT_MARKER) in before
    flag = tmp_path / "flag"
    flag.write_text("x")
    with pytest.raises(MetadataError, match=r"belongs to metadata store sqlite:///.*first\.sqlite.*not to "
                                            r"sqlite:///.*second\.sqlite"):
        run(chain(object_root, f"sqlite:///{tmp_path / 'second.sqlite'}", flag=str(flag)))
    assert sorted(storage.list_files(object_root)) == before


# ------------------------------------------------------------------------------- concurrent runs
def test_the_cache_serves_the_result_published_last_not_the_one_registered_last(tmp_path):
    """Run A registers first and publishes last; a rerun must reuse A's result — the newest one, the one
    its downstream nodes (and Push) last used — not B's. Picking by execution id took B's, so after
    concurrent first runs a plain rerun re-ran Evaluate and Push and pushed an older model again."""
    root = tmp_path / "root"
    seconds, marker = tmp_path / "seconds", tmp_path / "marker"
    env = {**os.environ, "HW_TEST_ROOT": str(root), "PYTHONPATH": str(SUPPORT),
           "HW_FIRST_SECONDS_FILE": str(seconds), "HW_FIRST_MARKER": str(marker)}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "run",
                                 str(SUPPORT / "crash_pipeline.py"), "--to", "first", "--quiet"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    seconds.write_text("4")
    a = start()
    deadline = time.time() + 60
    while not marker.exists():  # A's execution is registered and running
        assert a.poll() is None and time.time() < deadline, a.communicate()[0]
        time.sleep(0.05)
    seconds.write_text("0.1")
    b = start()
    assert b.wait(timeout=120) == 0, b.communicate()[0]
    assert a.poll() is None, "A finished before B: the test needs A to publish last"
    assert a.wait(timeout=120) == 0, a.communicate()[0]
    for proc in (a, b):
        proc.communicate()
    third = start()
    assert third.wait(timeout=120) == 0, third.communicate()[0]
    third.communicate()
    store = connect(f"sqlite:///{root / 'metadata.sqlite'}")
    records = [store.record(e) for e in store.mlmd.get_executions()]
    complete = sorted(r.id for r in records if r.state == "COMPLETE")
    [cached] = [r for r in records if r.state == "CACHED"]
    assert len(complete) == 2 and cached.properties["__cached_from__"] == complete[0]
