"""Shared helpers of the built-in components: package identity, engine choice, split checks, layout facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from headwater.components import Evaluate, Ingest, _layout, _runtime
from headwater.components.api import fingerprint_code_ref, fingerprint_file
from headwater.metadata import types
from headwater.metadata.errors import InputDataError


def test_components_split_into_packages_keep_their_public_identity():
    for comp, package in ((Ingest, "headwater.components.ingest"), (Evaluate, "headwater.components.evaluate")):
        assert comp.spec.module == package
        assert comp.spec.qualified_name == f"{package}.{comp.spec.name}"  # the MLMD execution type name
        assert comp.spec.function == comp.spec.name
        assert comp.spec.source_file.endswith("_component.py")


def test_a_package_component_fingerprints_its_whole_package():
    # A change in any module of the package (e.g. ingest/_read.py) is a cache miss, as when it was one file.
    assert Ingest.code_fingerprint() == fingerprint_code_ref("headwater.components.ingest")
    assert Ingest.code_fingerprint() != fingerprint_file(Ingest.spec.source_file)
    assert Evaluate.code_fingerprint() == fingerprint_code_ref("headwater.components.evaluate")


@pytest.mark.parametrize(("args", "engine"), [
    ((), "local"),
    (("--runner=DirectRunner",), "local"),
    (("--runner", "PrismRunner"), "local"),
    (("--runner=FlinkRunner", "--flink_master=x:8081"), "beam"),
    (("--runner", "DataflowRunner"), "beam"),  # the two-argument form Beam accepts too
    (("--runner=FlinkRunner", "--runner=DirectRunner"), "local"),  # the last one wins, as in Beam
    (("--runner",), "local"),
])
def test_one_runner_parsing_for_every_engine_choice(args, engine):
    assert _runtime.choose_engine("auto", args, component="Transform") == engine


def test_engine_must_be_known():
    with pytest.raises(InputDataError, match=r"Transform engine='spark' is unknown; use 'auto', 'local' or 'beam'"):
        _runtime.choose_engine("spark", (), component="Transform")


def _examples(root: Path, splits: dict[str, bool], span: int | None = None) -> types.Examples:
    art = types.Examples(str(root))
    art.properties["split_names"] = json.dumps(list(splits))
    if span is not None:
        art.properties["span"] = span
    for name, has_data in splits.items():
        folder = root / _layout.split_dir(name)
        folder.mkdir(parents=True)
        if has_data:
            (folder / f"{_layout.EXAMPLES_FILE_PREFIX}-00000-of-00001{_layout.EXAMPLES_FILE_SUFFIX}").write_bytes(b"")
    return art


def test_split_checks_need_data_files_and_name_the_setting(tmp_path):
    art = _examples(tmp_path / "a", {"train": True, "eval": True, "test": False})
    _runtime.check_splits([art], ["train", "eval"], node="node 'train'", setting="Train's train_splits")
    # An empty split folder is no split: the older Train check let it through to fail inside run_fn.
    with pytest.raises(InputDataError, match=r"node 'train': Examples artifact .*a has no split 'test' \(it has "
                                             r"\['eval', 'train'\]\); set Train's eval_splits to split names it has"):
        _runtime.check_splits([art], ["test"], node="node 'train'", setting="Train's eval_splits")
    older = _examples(tmp_path / "b", {"train": True}, span=3)
    with pytest.raises(InputDataError, match=r"Examples artifact .*b \(span 3\) has no split 'eval' \(it has "
                                             r"\['train'\]\)"):
        _runtime.check_splits([art, older], ["eval"], node="Transform", setting="Transform's transform_splits")
    missing = types.Examples(str(tmp_path / "nowhere"))
    with pytest.raises(InputDataError, match=r"has no split 'train' \(it has none\)"):
        _runtime.check_splits([missing], ["train"], node="node 'tune'", setting="Tune's train_splits")


def test_layout_facts():
    assert _layout.serving_model_path("/m/1") == "/m/1/Format-Serving"
    assert _layout.split_dir("eval") == "Split-eval"
    assert (_layout.BLESSED_FILE, _layout.NOT_BLESSED_FILE) == ("BLESSED", "NOT_BLESSED")
