"""Fault campaign: kill ``headwater run`` at random moments, then check that nothing was lost or left.

Each try runs the small pipeline of ``benchmarks/support/fault_pipeline.py`` (make a model of a few MB,
bless it, Push it) with ``--no-cache`` and, after a random delay, sends one of kill -9 (the runner only:
its workers are orphaned, the harshest case), SIGTERM (the runner) or SIGINT (the whole process group,
as Ctrl-C in a terminal does). Then it checks:

* no LIVE artifact without its files (data lost);
* no partial ``serving/N`` (a version folder without ``saved_model.pb`` or with a different model than
  its push record names: wrong result);
* a plain rerun succeeds, its push is content idempotent (same seed: the served version does not change
  once the model is served), and it leaves no ``.push-tmp-*`` and no ``_tmp`` scratch folder;
* what the killed run printed: a clear ``headwater:`` message, nothing (kill -9), or a traceback.

    python benchmarks/fault_campaign.py --tries 20 [--seed 7] [--max-delay 6]

Prints the counts: tries, clear errors, silent kills, tracebacks, wrong results, data lost, leftovers,
failed reruns.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "support" / "fault_pipeline.py"
SIGNALS = {"kill -9": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}


def headwater(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HW_FAULT_ROOT": str(root), "PYTHONPATH": str(HERE / "support")}
    return subprocess.Popen([sys.executable, "-m", "headwater.pipelines.cli", "run", str(PIPELINE),
                             "--workers", "2", *args], cwd=root.parent, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def end_group(proc: subprocess.Popen[str], grace: float = 15.0) -> str:
    """Wait for the run and every process of its group (orphaned workers) to end; returns the output."""
    out, _ = proc.communicate(timeout=300)
    deadline = time.time() + grace
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return out
        time.sleep(0.1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # our own group only
    except ProcessLookupError:
        pass
    return out


def live_without_files(root: Path) -> list[str]:
    from headwater.metadata import ArtifactState, connect
    from headwater.metadata.errors import MetadataError

    try:
        store = connect(f"sqlite:///{root / 'metadata.sqlite'}", readonly=True)
    except MetadataError as exc:
        import sqlite3

        con = sqlite3.connect(root / "metadata.sqlite")
        check = con.execute("PRAGMA integrity_check").fetchall()
        con.close()
        print(f"cannot read the store: {exc}\n  integrity_check: {check}")
        store = connect(f"sqlite:///{root / 'metadata.sqlite'}", readonly=True)
    return [p.uri for p in store.mlmd.get_artifacts() if p.state == ArtifactState.LIVE and not Path(p.uri).is_dir()]


def partial_versions(serving: Path) -> list[str]:
    bad = []
    if not serving.is_dir():
        return bad
    for version in serving.iterdir():
        if not version.name.isdigit():
            continue
        record = version / ".headwater-push.json"
        if not (version / "saved_model.pb").is_file() or not record.is_file():
            bad.append(f"{version}: incomplete")
            continue
        from headwater.components.push import model_fingerprint

        if json.loads(record.read_text())["fingerprint"] != model_fingerprint(version):
            bad.append(f"{version}: content differs from its record")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-delay", type=float, default=5.0, help="kill within this many seconds")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="hw-faults-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        serving = Path(tmp) / "serving"
        first = headwater(root)
        assert first.wait(timeout=300) == 0, end_group(first)
        end_group(first)
        for i in range(args.tries):
            name, sig = rng.choice(list(SIGNALS.items()))
            delay = rng.uniform(0.0, args.max_delay)
            proc = headwater(root, "--no-cache")
            time.sleep(delay)
            if proc.poll() is None:
                (os.killpg if sig == signal.SIGINT else os.kill)(proc.pid, sig)
                killed = True
            else:
                killed = False
            out = end_group(proc)
            counts["tries"] += 1
            if "Traceback" in out:
                counts["tracebacks"] += 1
                print(f"try {i}: {name} at {delay:.2f}s left a traceback:\n{out[-2000:]}")
            elif not killed:
                counts["finished before the kill"] += 1
            elif any(m in out for m in ("headwater: error:", "headwater: interrupted", "FAILED in")):
                counts["clear errors"] += 1
            else:
                counts["silent (kill -9)" if sig == signal.SIGKILL else "silent"] += 1
            lost = live_without_files(root)
            partial = partial_versions(serving)
            if lost:
                counts["data lost"] += 1
                print(f"try {i}: {name} at {delay:.2f}s: LIVE artifacts without files: {lost}")
            rerun = headwater(root)
            rerun_out = end_group(rerun)
            if rerun.returncode != 0:
                counts["reruns failed"] += 1
                print(f"try {i}: rerun after {name} at {delay:.2f}s failed:\n{rerun_out[-2000:]}")
            partial += partial_versions(serving)
            if partial:
                counts["wrong results"] += 1
                print(f"try {i}: partial or wrong serving versions: {partial}")
            leftovers = [p.name for p in serving.glob(".push-tmp-*")] + (["_tmp"] if (root / "_tmp").exists() else [])
            if leftovers:
                counts["leftovers"] += 1
                print(f"try {i}: left behind after the rerun: {leftovers}")
            if live_without_files(root):
                counts["data lost"] += 1
        versions = sorted(int(p.name) for p in serving.iterdir() if p.name.isdigit()) if serving.is_dir() else []
    print(f"\nfault campaign: {args.tries} tries (seed {args.seed}, kills within {args.max_delay:.1f}s), "
          f"{len(versions)} serving version(s) at the end")
    for key in ("tries", "finished before the kill", "clear errors", "silent (kill -9)", "silent", "tracebacks",
                "wrong results", "data lost", "leftovers", "reruns failed"):
        print(f"  {key:<26} {counts.get(key, 0)}")
    bad = sum(counts.get(k, 0) for k in ("tracebacks", "wrong results", "data lost", "leftovers", "reruns failed"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
