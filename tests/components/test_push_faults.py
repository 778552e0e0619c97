"""Push against what a hostile or crashed world leaves in a destination: stale temporary copies of killed
pushes, planted links, odd names, a full disk."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from faults import fill
from headwater.components import push as push_module
from headwater.components.push import PUSH_RECORD, push_model
from headwater.metadata.errors import PushRefusedError
from test_push import make_blessing, make_model

KILLED_PUSH = """
import sys, time
from pathlib import Path
from headwater.components import push
tmp, fd = push._new_temp(Path(sys.argv[1]))
(tmp / "saved_model.pb").write_bytes(b"half a model")
print(tmp, flush=True)
time.sleep(600)
"""


def pushed(tmp_path: Path, base: Path, name: str, content: str, model_id: int) -> dict:
    model = make_model(tmp_path, name, content, model_id)
    return push_model(model, make_blessing(tmp_path, f"b-{name}", model), str(base))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_temporary_copies_of_killed_pushes_are_swept_and_live_ones_kept(tmp_path, sig):
    base = tmp_path / "serving"
    base.mkdir()
    victim = subprocess.Popen([sys.executable, "-c", KILLED_PUSH, str(base)], stdout=subprocess.PIPE, text=True)
    assert victim.stdout is not None
    stale = Path(victim.stdout.readline().strip())
    live = subprocess.Popen([sys.executable, "-c", KILLED_PUSH, str(base)], stdout=subprocess.PIPE, text=True)
    assert live.stdout is not None
    running = Path(live.stdout.readline().strip())
    try:
        victim.send_signal(sig)
        victim.wait(timeout=30)
        assert stale.is_dir()  # what a push killed mid-copy leaves behind
        out = pushed(tmp_path, base, "a", "model a", 1)
        assert out["pushed_version"] == "1"
        assert not stale.exists(), "the dead push's temporary copy was not swept"
        assert running.is_dir(), "a running push's temporary copy was swept"
    finally:
        live.kill()
        live.wait(timeout=30)
        victim.stdout.close()
        live.stdout.close()
    pushed(tmp_path, base, "b", "model b", 2)
    assert not list(base.glob(".push-tmp-*"))


def test_a_link_at_the_lock_file_is_refused_and_nothing_is_written_outside(tmp_path):
    base = tmp_path / "serving"
    base.mkdir()
    outside = tmp_path / "outside.txt"
    (base / ".headwater-push.lock").symlink_to(outside)
    with pytest.raises(PushRefusedError, match=r"\.headwater-push\.lock is a link; Push only writes inside"):
        pushed(tmp_path, base, "a", "model a", 1)
    assert not outside.exists()
    assert sorted(p.name for p in base.iterdir()) == [".headwater-push.lock"]


def test_links_and_odd_names_among_versions(tmp_path):
    base = tmp_path / "serving"
    base.mkdir()
    (base / "²").mkdir()  # str.isdigit() says yes, int() says no: not a version
    (base / "1").symlink_to(tmp_path / "nowhere")  # a dangling link at the next number
    out = pushed(tmp_path, base, "a", "model a", 1)
    assert out["pushed_version"] == "2" and (base / "2" / "saved_model.pb").read_text() == "model a"
    assert (base / "1").is_symlink() and (base / "²").is_dir()


def test_a_version_that_is_a_link_is_never_fingerprinted_through(tmp_path, monkeypatch):
    base = tmp_path / "serving"
    base.mkdir()
    elsewhere = tmp_path / "elsewhere"
    first = pushed(tmp_path, elsewhere, "a", "model a", 1)
    (base / "5").symlink_to(Path(first["pushed_destination"]))  # the same model, behind a link
    looked: list[Path] = []
    real = push_module.model_fingerprint
    monkeypatch.setattr(push_module, "model_fingerprint", lambda d: looked.append(Path(d)) or real(d))
    out = pushed(tmp_path, base, "a2", "model a", 2)
    assert out["pushed_version"] == "6" and out["pushed_new_version"] == 1
    assert all("elsewhere" not in str(p) and p.name != "5" for p in looked), looked


def test_pushing_the_newest_versions_content_again_records_that_version(tmp_path):
    base = tmp_path / "serving"
    one = pushed(tmp_path, base, "a", "model a", 1)
    again = pushed(tmp_path, base, "a-retrained", "model a", 7)  # another artifact, the same content
    assert (again["pushed_version"], again["pushed_new_version"]) == (one["pushed_version"], 0)
    assert again["model_fingerprint"] == one["model_fingerprint"]
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == ["1"]


def test_a_full_destination_is_the_documented_refusal_and_leaves_nothing(tmp_path, tmpfs):
    base = tmpfs(512) / "serving"
    model = make_model(tmp_path, "big", "x" * 400_000, 1)
    with pytest.raises(PushRefusedError, match=r"cannot push to .*serving: .*No space left on device"):
        push_model(model, make_blessing(tmp_path, "bb", model), str(base))
    assert sorted(p.name for p in base.iterdir()) == [".headwater-push.lock"]
    filler = fill(base)  # and on a disk too full for even the temporary folder
    small = make_model(tmp_path, "small", "y", 2)
    with pytest.raises(PushRefusedError, match="No space left on device"):
        push_model(small, make_blessing(tmp_path, "bs", small), str(base))
    filler.unlink()
    assert not any(p.name == PUSH_RECORD or p.name.startswith(".push-tmp-") for p in base.rglob("*"))

