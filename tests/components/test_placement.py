"""Per-node images and placement: typed, checked when they are given, and ignored by the local runner
(which says so once in the run header)."""

from __future__ import annotations

import io

import hw_test_components as c
import pytest
from headwater.components import Output, Placement, Toleration, component
from headwater.components.placement import GPU_TOLERATION, image_problem
from headwater.metadata import types
from headwater.metadata.errors import ComponentDefinitionError
from headwater.pipelines import LocalRunner, Pipeline

THIS_FILE = __file__


@pytest.mark.parametrize("reference", [
    "python:3.11-slim", "headwater:test", "registry.example/team/train-gpu:0.4", "localhost:5000/hw/cpu",
    "ghcr.io/org/hw@sha256:" + "a" * 64, "registry.example/hw:1.0@sha256:" + "0" * 64, "[::1]:5000/hw:1",
])
def test_valid_image_references(reference):
    assert image_problem(reference) is None


@pytest.mark.parametrize(("reference", "message"), [
    ("Registry.example/Team/Train:1", "not a valid reference"),
    ("team/Train:1", r"repository names are lowercase: 'team/train:1'"),
    ("train:", "not a valid reference"),
    ("train:1 ", "contains whitespace"),
    ("", "is not an image reference"),
    ("hw@sha256:abc", "not a valid reference"),
    ("-hw:1", "not a valid reference"),
])
def test_image_references_that_cannot_be_valid(reference, message):
    with pytest.raises(ComponentDefinitionError, match=r"node 'produce': with_image: .*" + message):
        c.produce().with_image(reference)


def test_errors_name_the_node_and_the_line_that_gave_them():
    with pytest.raises(ComponentDefinitionError) as info:
        c.produce().with_id("ingest").with_image("Not Valid")
    assert info.value.file == THIS_FILE and info.value.node_id is None
    assert f"(at {THIS_FILE}:{info.value.line})" in str(info.value)
    with pytest.raises(ComponentDefinitionError, match=r"node 'train': with_resources: gpu=1.5 is not a GPU count; "
                       r"GPUs are whole devices: give a non-negative integer"):
        c.produce().with_id("train").with_resources(gpu=1.5)  # type: ignore[arg-type]
    for bad in (-1, True, "1"):
        with pytest.raises(ComponentDefinitionError, match="is not a GPU count"):
            c.produce().with_resources(gpu=bad)  # type: ignore[arg-type]
    with pytest.raises(ComponentDefinitionError, match=r"with_placement takes a Placement\(...\)"):
        c.produce().with_placement({"node_selector": {"pool": "gpu"}})  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"key": "dedicated", "operator": "Equals", "value": "ml"}, "operator 'Equals' is not one of Equal, Exists"),
    ({"key": "dedicated", "value": "ml", "effect": "NoSchedul"},
     "effect 'NoSchedul' is not one of NoSchedule, PreferNoSchedule, NoExecute"),
    ({"key": "gpu", "operator": "Exists", "value": "x"}, "operator 'Exists' takes no value"),
    ({"operator": "Equal", "value": "x"}, "a toleration without a key must use operator='Exists'"),
    ({"key": "a", "effect": "NoSchedule", "toleration_seconds": 30}, "toleration_seconds applies only to"),
    ({"key": "bad key!"}, "label key 'bad key!'"),
])
def test_bad_tolerations(kwargs, message):
    with pytest.raises(ComponentDefinitionError, match=message):
        Toleration(**kwargs)


def test_placement_errors_name_the_line_that_wrote_them():
    with pytest.raises(ComponentDefinitionError) as info:
        Toleration("gpu", "Exists", effect="Never")
    assert info.value.file == THIS_FILE and f"(at {THIS_FILE}:{info.value.line})" in str(info.value)


def test_bad_placements():
    with pytest.raises(ComponentDefinitionError, match="node_selector: label value 'a b'"):
        Placement(node_selector={"pool": "a b"})
    with pytest.raises(ComponentDefinitionError, match="tolerations take Toleration"):
        Placement(tolerations=({"key": "x"},))  # type: ignore[arg-type]
    with pytest.raises(ComponentDefinitionError, match="service_account 'Trainer_SA' is not a ServiceAccount name"):
        Placement(service_account="Trainer_SA")


def test_component_default_node_override_and_merged_placement():
    @component(image="registry.example/hw-gpu:0.4",
               placement=Placement(node_pool="gpu-pool", tolerations=(Toleration("dedicated", "Equal", "ml",
                                                                                 "NoSchedule"),)))
    def fit(model: Output[types.Model]) -> None: ...

    node = fit()
    assert node.effective_image == "registry.example/hw-gpu:0.4"
    assert node.with_image("registry.example/hw-gpu:0.5").effective_image == "registry.example/hw-gpu:0.5"
    placed = node.with_placement(Placement(node_selector={"accelerator": "nvidia-l4"}, service_account="trainer"))
    merged = placed.effective_placement
    assert merged is not None and merged.node_pool == "gpu-pool" and merged.service_account == "trainer"
    assert merged.node_selector == {"accelerator": "nvidia-l4"} and len(merged.tolerations) == 1
    assert c.produce().effective_image is None and c.produce().effective_placement is None
    gpu = node.with_resources(gpu=2, gpu_toleration=True).resources
    assert gpu.gpu == 2 and gpu.gpu_toleration
    assert GPU_TOLERATION.to_manifest() == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    with pytest.raises(ComponentDefinitionError, match=r"component '.*bad' \(.*test_placement.py:\d+\): image 'Bad:1'"):
        @component(image="Bad:1")
        def bad(model: Output[types.Model]) -> None: ...


def test_local_runner_ignores_images_and_says_so_once(tmp_path):
    a = c.produce(value="a").with_id("a").with_image("registry.example/hw-cpu:0.1")
    b = c.produce(value="b").with_id("b").with_image("registry.example/hw-gpu:0.1").with_resources(gpu=1)
    stream = io.StringIO()
    result = LocalRunner(max_workers=1, stream=stream).run(Pipeline("imgs", str(tmp_path / "root"), [a, b]))
    assert result.ok
    lines = stream.getvalue().splitlines()
    note = ("headwater: 2 node(s) name a container image (a, b); the local runner ignores images and placement "
            "and runs every node in this Python environment")
    assert lines[1] == note and lines.count(note) == 1
    stream = io.StringIO()
    LocalRunner(max_workers=1, stream=stream).run(Pipeline("plain", str(tmp_path / "r2"), [c.produce()]))
    assert "container image" not in stream.getvalue()


def test_no_headwater_code_hides_gpus():
    """Train uses a GPU when TensorFlow sees one: nothing in headwater hides devices or forces the CPU."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for folder in ("components", "pipelines", "metadata", "templates"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text()
            for forcing in ("CUDA_VISIBLE_DEVICES", "set_visible_devices", "tf.device(\"/CPU", "tf.device('/CPU"):
                assert forcing not in text, f"{path} uses {forcing}"


def test_api_access_is_explicit_and_mounts_the_token_only_where_asked():
    from headwater.pipelines.kubernetes._placement import apply_placement

    with pytest.raises(ComponentDefinitionError, match=r"Placement: api_access is 'yes'; give True or False"):
        Placement(api_access="yes")  # type: ignore[arg-type]
    serving = Placement(service_account="headwater-serving", api_access=True)
    assert apply_placement({"automountServiceAccountToken": False}, serving, None) == {
        "automountServiceAccountToken": True, "serviceAccountName": "headwater-serving"}
    assert apply_placement({"automountServiceAccountToken": False}, Placement(service_account="trainer"), None) == {
        "automountServiceAccountToken": False, "serviceAccountName": "trainer"}
    assert Placement(service_account="a").merged(Placement(api_access=True)).api_access
