"""The public API is exactly ``__all__``; importing headwater never imports the heavy ML stack."""

import subprocess
import sys

import headwater.components
import headwater.metadata
import headwater.pipelines

FIXED = {
    headwater.components: {"component", "Input", "Output"},
    headwater.metadata: {"types", "Artifact", "connect"},
    headwater.pipelines: {"Pipeline", "Param", "LocalRunner"},
}


def test_fixed_public_names_exported():
    for module, names in FIXED.items():
        assert names <= set(module.__all__), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name} in __all__ but missing"


def test_import_is_light():
    code = (
        "import sys, headwater.components, headwater.pipelines, headwater.metadata, headwater.templates\n"
        "print([m for m in ('tensorflow', 'apache_beam', 'tensorflow_model_analysis', 'tensorflow_transform',"
        " 'keras', 'pyarrow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
