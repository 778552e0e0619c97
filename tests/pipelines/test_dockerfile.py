"""``headwater k8s dockerfile``: the generated files parse as Dockerfiles and name the packages each
component set needs, at the versions constraints.txt pins; deploy/Dockerfile is what the command writes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from headwater.pipelines.cli import main
from headwater.pipelines.kubernetes.dockerfile import DockerfileSpec, render_dockerfile

REPO = Path(__file__).resolve().parents[2]
PINS = {re.sub(r"[-_.]+", "-", name).lower(): version for name, _, version in
        (line.partition("==") for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line)}


def parse(text: str, tmp_path: Path) -> DockerfileParser:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return DockerfileParser(str(path))


def installed(parser: DockerfileParser) -> dict[str, str]:
    """The pip requirements of the RUN instruction: canonical name (with extras) -> pinned version."""
    [run] = [i["value"] for i in parser.structure if i["instruction"] == "RUN" and "pip install" in i["value"]]
    words = shlex.split(run.split("&&")[0])
    assert words[:4] == ["pip", "install", "-c", "constraints.txt"]
    pins = {}
    for word in words[5:]:
        name, _, version = word.partition("==")
        assert version, f"{word!r} is not pinned"
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def write(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[DockerfileParser, str]:
    out = tmp_path / "out.Dockerfile"
    assert main(["k8s", "dockerfile", *args, "-o", str(out)]) == 0
    return parse(out.read_text(), tmp_path), capsys.readouterr().err


def test_cpu_image_of_ingest_and_transform_has_the_pinned_ml_stack(tmp_path, capsys):
    parser, said = write(tmp_path, capsys, "--component", "Ingest", "--component", "Transform")
    assert "wrote a Dockerfile (extras ml)" in said
    assert parser.baseimage == "python:3.11-slim"
    pins = installed(parser)
    for name in ("tensorflow", "tensorflow-transform", "tensorflow-model-analysis", "apache-beam[gcp]", "pyarrow",
                 "ml-metadata", "protobuf"):
        assert pins[name] == PINS[name.split("[")[0]], name
    assert "tensorflow[and-cuda]" not in pins
    assert parser.structure[-1]["instruction"] == "CMD"
    assert any(i["instruction"] == "USER" and i["value"] == "1000:1000" for i in parser.structure)


def test_gpu_image_of_train_installs_tensorflow_with_cuda_at_the_pinned_version(tmp_path, capsys):
    parser, said = write(tmp_path, capsys, "--component", "Train", "--cuda")
    assert "with CUDA" in said
    pins = installed(parser)
    assert pins["tensorflow[and-cuda]"] == PINS["tensorflow"] == "2.16.2"
    assert "tensorflow" not in pins  # one TensorFlow requirement, with the CUDA extra
    assert pins["tf-keras"] == PINS["tf-keras"]


def test_small_push_image_has_no_ml_stack(tmp_path, capsys):
    parser, _ = write(tmp_path, capsys, "--component", "Push", "--package", "pyarrow")
    pins = installed(parser)
    assert set(pins) == {"ml-metadata", "protobuf", "kubernetes", "pyyaml", "argcomplete", "pyarrow"}
    [run] = [i["value"] for i in parser.structure if i["instruction"] == "RUN"]
    assert "pip install -c constraints.txt . " in run  # headwater itself, without extras


def test_bad_requests_say_what_to_do(tmp_path, capsys):
    assert main(["k8s", "dockerfile", "--component", "Push", "--cuda"]) == 2
    assert "--cuda installs TensorFlow for GPUs, which only the ml extra has" in capsys.readouterr().err
    assert main(["k8s", "dockerfile", "--package", "no-such-package-x"]) == 2
    assert "'no-such-package-x' has no pinned version in constraints.txt" in capsys.readouterr().err
    assert main(["k8s", "dockerfile", "--component", "Nothing"]) == 2
    assert "--component 'Nothing' is not a component" in capsys.readouterr().err


def test_deploy_dockerfile_is_what_the_command_writes(tmp_path):
    command = "headwater k8s dockerfile --extra ml --extra ui"
    text = render_dockerfile(DockerfileSpec(extras=("ml", "ui"), command=command), REPO)
    assert (REPO / "deploy" / "Dockerfile").read_text() == text, \
        "regenerate it: headwater k8s dockerfile --extra ml --extra ui -o deploy/Dockerfile"
    parser = parse(text, tmp_path)
    copied = [i["value"] for i in parser.structure if i["instruction"] == "COPY"]
    for folder in ("components", "pipelines", "metadata", "templates", "ui"):  # every package of the source tree
        assert any(v.startswith(folder) for v in copied)
        assert (REPO / folder).is_dir()
