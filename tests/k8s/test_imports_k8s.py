"""The Kubernetes modules import neither the kubernetes client nor the ML stack until a run needs them."""

from __future__ import annotations

import subprocess
import sys


def test_kubernetes_modules_import_light() -> None:
    code = (
        "import sys\n"
        "import headwater.pipelines.kubernetes, headwater.pipelines.kubernetes.manifests, headwater.pipelines.cli.k8s\n"
        "heavy = [m for m in ('kubernetes', 'tensorflow', 'apache_beam', 'ml_metadata') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
