"""Dockerfiles for component images, with every dependency pinned from headwater's ``constraints.txt``.

::

    headwater k8s dockerfile --component Ingest --component Transform -o Dockerfile.cpu
    headwater k8s dockerfile --component Train --cuda -o Dockerfile.gpu
    headwater k8s dockerfile --extra core --package pyarrow -o Dockerfile.push

An image is built from the headwater source tree (the build context is the repository root, as for
``deploy/Dockerfile``, which this module writes too). It installs headwater with the extras its components
need (``core``: none, the metadata store and runners only; ``ml``: TensorFlow, tf.Transform, TFMA, Beam,
pyarrow); each extra's direct dependencies are named with the version ``constraints.txt`` pins, and pip
runs with ``-c constraints.txt`` so everything below them is pinned too. ``cuda=True`` installs
``tensorflow[and-cuda]`` at the pinned TensorFlow version: the CUDA and cuDNN libraries as the wheels
TensorFlow itself pins (the GPU node provides only the NVIDIA driver).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from headwater.components.errors import RunnerError

__all__ = ["EXTRAS", "ML_MODULES", "DockerfileSpec", "extras_for", "pinned", "render_dockerfile", "source_tree"]

#: The extras an image can have: ``core`` is headwater without extras.
EXTRAS = ("core", "ml", "ui")
#: Top-level modules that only the ``ml`` extra installs: a component importing one of them needs it.
ML_MODULES = frozenset({"tensorflow", "tensorflow_transform", "tensorflow_model_analysis", "apache_beam",
                        "tfx_bsl", "pyarrow", "tf_keras", "keras_tuner", "tensorflow_metadata"})
BASE_IMAGE = "python:3.11-slim"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class DockerfileSpec:
    """What an image holds: headwater's ``extras``, more ``packages`` (pinned), CUDA for TensorFlow."""

    extras: tuple[str, ...] = ("ml",)
    packages: tuple[str, ...] = ()
    cuda: bool = False
    base: str = BASE_IMAGE
    command: str = ""  # the command line that wrote it, for the header


def source_tree(start: Path | None = None) -> Path:
    """The headwater source tree (holding ``pyproject.toml`` and ``constraints.txt``) images are built from."""
    candidates = [start] if start else [Path.cwd(), Path(__file__).resolve().parents[2]]
    for folder in candidates:
        if folder and (folder / "constraints.txt").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    where = ", ".join(str(c) for c in candidates if c)
    raise RunnerError(f"no headwater source tree (pyproject.toml and constraints.txt) at {where}: images are "
                      "built from it; run the command in the repository root or pass --source DIR")


def _constraints(tree: Path) -> dict[str, tuple[str, str]]:
    """``constraints.txt`` as canonical name -> (name as written, version)."""
    pins: dict[str, tuple[str, str]] = {}
    for line in (tree / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = (part.strip() for part in line.split("==", 1))
            pins[_canonical(name)] = (name, version)
    return pins


def _extra_requirements(tree: Path, extra: str) -> list[str]:
    project = tomllib.loads((tree / "pyproject.toml").read_text())["project"]
    if extra == "core":
        return list(project.get("dependencies", []))
    extras = project.get("optional-dependencies", {})
    if extra not in extras:
        raise RunnerError(f"unknown extra {extra!r}; images take {', '.join(EXTRAS)}")
    return list(extras[extra])


def pinned(tree: Path, spec: DockerfileSpec) -> list[str]:
    """The requirements the image names: each extra's direct dependencies and ``packages``, pinned to the
    version in ``constraints.txt`` (``tensorflow[and-cuda]`` in place of ``tensorflow`` with ``cuda``)."""
    pins = _constraints(tree)
    wanted: list[tuple[str, str]] = []  # (name, extras)
    for extra in ("core", *spec.extras):
        for requirement in _extra_requirements(tree, extra):
            match = _REQUIREMENT.match(requirement)
            if match:
                wanted.append((match.group(1), match.group(2) or ""))
    for package in spec.packages:
        match = _REQUIREMENT.match(package)
        if not match:
            raise RunnerError(f"--package {package!r} is not a package name")
        wanted.append((match.group(1), match.group(2) or ""))
    if spec.cuda:
        wanted.append(("tensorflow", "[and-cuda]"))
    out: dict[str, str] = {}
    for name, extras in wanted:
        key = _canonical(name)
        if key not in pins:
            raise RunnerError(f"{name!r} has no pinned version in constraints.txt; pin it there "
                              f"(pip install -c constraints.txt '{name}==X' and add the line) before building an image")
        if key == "tensorflow" and spec.cuda:
            extras = "[and-cuda]"
        written, version = pins[key]
        out[key] = f"{written}{extras}=={version}"
    return [out[k] for k in sorted(out)]


def extras_for(warm_imports: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """The extras components need, from their declared heavy imports (``warm_imports``)."""
    needs_ml = any(module.split(".")[0] in ML_MODULES for modules in warm_imports for module in modules)
    return ("ml",) if needs_ml else ("core",)


def package_folders(tree: Path) -> list[str]:
    """The source tree's top-level package folders (pyproject's ``package-dir``): ``pip install .`` needs each."""
    setuptools = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]
    return sorted({folder.split("/")[0] for folder in setuptools["package-dir"].values()})


def _install_target(extras: Sequence[str]) -> str:
    named = [e for e in extras if e != "core"]
    return f'".[{",".join(named)}]"' if named else "."


def render_dockerfile(spec: DockerfileSpec, tree: Path | None = None) -> str:
    """The Dockerfile text (build it with the source tree as the context)."""
    tree = tree or source_tree()
    for extra in spec.extras:
        if extra not in EXTRAS:
            raise RunnerError(f"unknown extra {extra!r}; images take {', '.join(EXTRAS)}")
    requirements = pinned(tree, spec)
    what = ", ".join(spec.extras) + (" with CUDA for TensorFlow" if spec.cuda else "")
    lines = [
        f"# A headwater runtime image ({what}), every dependency pinned from constraints.txt.",
        "#",
        "#   docker build -f THIS_FILE -t REGISTRY/NAME:TAG .          (from the headwater repository root)",
        "#",
        "# Executor pods run `python -m headwater.components.executor`; the orchestrator (--detach) runs",
        "# `python -m headwater.pipelines.cli run ...`. Your pipeline code goes on top of this image:",
        "#",
        "#   FROM REGISTRY/NAME:TAG",
        "#   COPY --chown=1000:1000 . /app/project",
        "#   WORKDIR /app/project",
    ]
    if spec.cuda:
        lines += ["#", "# CUDA: tensorflow[and-cuda] brings the CUDA and cuDNN libraries TensorFlow pins; the GPU node",
                  "# provides the NVIDIA driver (schedule the node with with_resources(gpu=1))."]
    if spec.command:
        lines += ["#", f"# Written by: {spec.command}"]
    lines += [
        f"FROM {spec.base}",
        "",
        "ENV PYTHONUNBUFFERED=1 \\",
        "    PYTHONDONTWRITEBYTECODE=1 \\",
        "    PIP_NO_CACHE_DIR=1 \\",
        "    PIP_DISABLE_PIP_VERSION_CHECK=1 \\",
        "    HOME=/tmp \\",
        "    TF_CPP_MIN_LOG_LEVEL=2",
        "",
        "WORKDIR /app",
        "# Dependencies first (a layer that changes only with the constraints), then the package itself.",
        "COPY constraints.txt pyproject.toml README.md ./",
        *[f"COPY {folder} ./{folder}" for folder in package_folders(tree)],
        f"RUN pip install -c constraints.txt {_install_target(spec.extras)} \\",
        *[f'        "{r}" \\' for r in requirements],
        " && groupadd --gid 1000 headwater \\",
        " && useradd --uid 1000 --gid 1000 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin headwater",
        "",
        "# Pods mount /tmp as an emptyDir and run with a read-only root filesystem.",
        "USER 1000:1000",
        'CMD ["python", "-m", "headwater.pipelines.cli", "--help"]',
    ]
    return "\n".join(lines) + "\n"
