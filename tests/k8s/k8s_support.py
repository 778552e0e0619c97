"""Shared code of the Kubernetes tests and benchmark: images the stand-in can "pull", a ready environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from standin import ApiStandIn, Image  # noqa: E402

PYTHON_BIN = str(Path(sys.executable).parent)
SHELL_IMAGE = "busybox:1.36"
RUNTIME_IMAGE = "headwater:test"


def runtime_image_env() -> dict[str, str]:
    """What the runtime image provides: Python with headwater installed, the test components on the path."""
    return {
        "PATH": f"{PYTHON_BIN}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "support"), str(HERE)]),
        "HOME": "/tmp",
        "PYTHONUNBUFFERED": "1",
    }


def images() -> dict[str, Image]:
    return {
        SHELL_IMAGE: Image(env={"PATH": "/usr/local/bin:/usr/bin:/bin"}),
        RUNTIME_IMAGE: Image(env=runtime_image_env()),
    }


class K8sEnv:
    """A stand-in cluster whose claim ``headwater-root`` is the test's pipeline root, and a runner config."""

    def __init__(self, tmp_path: Path, **standin_options: object) -> None:
        from headwater.pipelines.k8s_manifests import KubernetesConfig

        self.root = tmp_path / "root"
        self.root.mkdir()
        self.metadata = f"sqlite:///{tmp_path / 'metadata.sqlite'}"
        options = {"namespaces": ("default", "headwater"), "images": images(),
                   "claims": {"headwater-root": str(self.root)}, **standin_options}
        self.standin = ApiStandIn(tmp_path / "cluster", **options)
        self.kubeconfig = self.standin.kubeconfig(namespace="headwater")
        self.config = KubernetesConfig(
            namespace="headwater", image=RUNTIME_IMAGE, pipeline_root_claim="headwater-root",
            kubeconfig=self.kubeconfig, api_backoff=0.05, console_logs=False,
        )

    def runner(self, **config_changes: object) -> object:
        from headwater.pipelines.kubernetes import KubernetesRunner

        return KubernetesRunner(self.config.with_options(**config_changes), metadata=self.metadata, quiet=True)
