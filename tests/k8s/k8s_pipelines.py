"""Pipelines for the Kubernetes tests, and an orchestrator entry point for tests that kill or interrupt it.

Module level so that the orchestrator subprocess and the executor pods (whose image puts this folder and
tests/support on PYTHONPATH) import the same components.

    python k8s_pipelines.py --root DIR --metadata URI --kubeconfig FILE --claim NAME --image IMAGE \\
        [--run-id ID] [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import hw_test_components as c
from headwater.components import Input, Output, component, storage
from headwater.metadata import types
from headwater.pipelines import Pipeline


@component
def env_echo(out: Output[types.Examples], name: str = "HW_VALUE") -> None:
    """Record an environment variable of the executor (what the pod was given)."""
    (Path(out.uri) / "value.txt").write_text(os.environ.get(name, "<unset>"))
    out.custom_properties["value"] = os.environ.get(name, "<unset>")


@component
def write_then_fail(examples: Input[types.Examples], model: Output[types.Model]) -> None:
    """Write part of the output straight into the object store (as code that streams there would), then fail."""
    storage.write_bytes(storage.join(model.uri, "partial", "weights.bin"), b"half a model")
    print("wrote part of the model, about to fail")
    raise RuntimeError("the disk of the parameter server is full")


def diamond(root: str | Path, *, name: str = "k8s-demo", metadata: str | None = None, seconds: float = 0.0,
            slow: str = "b") -> Pipeline:
    """a, b -> j; a -> d. ``slow`` names the node that sleeps ``seconds``."""
    a = c.produce(value="a", seconds=seconds if slow == "a" else 0.0).with_id("a")
    b = c.produce(value="b", seconds=seconds if slow == "b" else 0.0).with_id("b")
    j = c.join(a=a.outputs.data, b=b.outputs.data).with_id("j")
    d = c.consume(examples=a.outputs.data, note="!").with_id("d")
    return Pipeline(name=name, root=str(root), nodes=[a, b, j, d], metadata=metadata)


def fan_out(root: str | Path, width: int, *, name: str = "fan", metadata: str | None = None) -> Pipeline:
    """``width`` independent no-op nodes (the orchestration-overhead benchmark)."""
    nodes = [c.noop().with_id(f"n{i:03d}") for i in range(width)]
    return Pipeline(name=name, root=str(root), nodes=nodes, metadata=metadata)


def main(argv: list[str] | None = None) -> int:
    from headwater.pipelines.kubernetes import KubernetesRunner
    from headwater.pipelines.kubernetes.manifests import KubernetesConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default="headwater")
    parser.add_argument("--claim", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--run-id")
    parser.add_argument("--seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    config = KubernetesConfig(namespace=args.namespace, image=args.image, pipeline_root_claim=args.claim,
                              kubeconfig=args.kubeconfig, api_backoff=0.05)
    pipeline = diamond(args.root, metadata=args.metadata, seconds=args.seconds)
    result = KubernetesRunner(config, run_id=args.run_id).run(pipeline)
    print(f"RESULT {result.run_id} {'ok' if result.ok else 'failed'} "
          + " ".join(f"{n}={r.state}" for n, r in sorted(result.nodes.items())), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
