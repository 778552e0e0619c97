"""The public API is exactly ``__all__``; importing headwater never imports the heavy ML stack."""

import subprocess
import sys

import headwater.components
import headwater.metadata
import headwater.pipelines

FIXED = {
    headwater.components: {"component", "Input", "Output", "Ingest", "Transform", "Train", "Evaluate", "Push",
                           "LatestBlessedModel", "LatestArtifact", "SpanRange", "Tune", "InfraValidate"},
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
        "import headwater.serving, headwater.serving.app, headwater.components.infra_validate\n"
        "print([m for m in ('tensorflow', 'apache_beam', 'tensorflow_model_analysis', 'tensorflow_transform',"
        " 'keras', 'pyarrow', 'starlette', 'uvicorn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_component_names_and_ports_keep_tfx_names():
    from headwater import components as c

    ports = {
        c.Ingest: ({"examples", "schema"}, set()),
        c.Transform: ({"transform_graph", "transformed_examples"}, {"examples", "schema"}),
        c.Train: ({"model", "model_run"}, {"examples", "transform_graph", "schema"}),
        c.Evaluate: ({"evaluation", "blessing"}, {"examples", "model", "baseline_model"}),
        c.Push: ({"pushed_model"}, {"model", "blessing", "infra_blessing"}),
        c.InfraValidate: ({"blessing"}, {"model", "examples"}),
        c.LatestBlessedModel: ({"model"}, set()),
    }
    for comp, (outputs, inputs) in ports.items():
        assert outputs <= set(comp.spec.outputs), comp
        assert inputs <= set(comp.spec.inputs), comp
    assert {"module_file", "train_steps", "eval_steps"} <= set(c.Train.spec.parameters)
    assert {"module_file"} <= set(c.Transform.spec.parameters)
    assert {"eval_config"} <= set(c.Evaluate.spec.parameters)
    assert {"destination"} <= set(c.Push.spec.parameters)
