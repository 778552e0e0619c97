"""``headwater compile``: compile a pipeline file for another orchestrator (today: Kubeflow Pipelines).

:func:`configure` fills in its parser (see the table in :mod:`headwater.pipelines.cli`). Loading the
pipeline file imports its components, never TensorFlow or Beam (components import those inside their
executors).
"""

from __future__ import annotations

import argparse
import sys

from headwater.pipelines.cli._args import add_env_options, key_values, secret_refs

__all__ = ["cmd_compile", "configure"]

_EPILOG = """\
examples:
  headwater compile pipeline.py --target kfp --image registry.example/headwater:0.1.0 \\
      --pipeline-root gs://my-bucket/headwater/penguin -o penguin.yaml
  headwater compile pipeline.py --target kfp --image registry.example/headwater:0.1.0 \\
      --pipeline-root-claim headwater-root -o penguin.yaml   # a relative root goes under /mnt/headwater
  headwater compile pipeline.py --target kfp --image registry.example/headwater:0.1.0 \\
      --pipeline-root s3://mlpipeline/headwater/penguin \\
      --env AWS_ENDPOINT_URL=http://minio-service.kubeflow:9000 --env AWS_REGION=us-east-1 \\
      --secret-env AWS_ACCESS_KEY_ID=mlpipeline-minio-artifact:accesskey \\
      --secret-env AWS_SECRET_ACCESS_KEY=mlpipeline-minio-artifact:secretkey -o penguin.yaml   # KFP's MinIO

Upload the file in the KFP UI (Pipelines > Upload) or with the kfp client; the runtime parameters
appear pre-filled with their defaults. Every task runs `python -m headwater.pipelines.kfp_task` in IMAGE
and writes its node's records to ML Metadata; the connection string comes from the Kubernetes Secret
named by --metadata-secret (key 'uri' unless NAME:KEY), created in the namespace the runs use. See
docs/kfp.md.
"""


def cmd_compile(args: argparse.Namespace) -> int:
    from headwater.metadata.errors import HeadwaterError
    from headwater.pipelines.kfp.compile import compile_kfp_package, headwater_version
    from headwater.pipelines.loader import load_pipeline

    secret, key = args.metadata_secret, "uri"
    if secret and ":" in secret:
        secret, key = secret.split(":", 1)
    if secret and secret.lower() == "none":
        secret = None
    try:
        env, secret_env = key_values(args.env, "--env"), secret_refs(args.secret_env)
        pipeline = load_pipeline(args.pipeline_file)
        image = args.image or f"headwater:{headwater_version()}"
        package = compile_kfp_package(
            pipeline,
            image=image,
            pipeline_root=args.pipeline_root,
            metadata_secret=secret,
            metadata_secret_key=key,
            pipeline_root_claim=args.pipeline_root_claim,
            pipeline_root_mount=args.pipeline_root_mount,
            image_pull_policy=args.image_pull_policy,
            env=env,
            secret_env=secret_env,
        )
    except HeadwaterError as exc:
        print(f"headwater: error: {exc}", file=sys.stderr)
        return 2
    for warning in package.warnings:
        print(f"headwater: warning: {warning}", file=sys.stderr)
    if not args.image:
        print(f"headwater: note: no --image given; every task runs {image!r}, which the cluster must be able "
              "to pull", file=sys.stderr)
    if args.output == "-":
        sys.stdout.write(package.to_yaml())
        return 0
    path = package.write(args.output or f"{pipeline.name}.yaml")
    tasks = package.pipeline_spec["root"]["dag"]["tasks"]
    params = package.pipeline_spec["root"].get("inputDefinitions", {}).get("parameters", {})
    print(f"headwater: wrote {path} (KFP v2 pipeline spec: {len(tasks)} tasks, {len(params)} runtime "
          f"parameters, image {image})")
    return 0


def configure(compile_: argparse.ArgumentParser) -> None:
    compile_.description = (
        "Compile the Pipeline defined in PIPELINE_FILE for another orchestrator. --target kfp writes a KFP v2 "
        "pipeline spec: one container task per node, the runtime parameters with their defaults, per-task "
        "resources and retries, and the push gated on the blessing.")
    compile_.epilog = _EPILOG
    compile_.formatter_class = argparse.RawDescriptionHelpFormatter
    compile_.add_argument("pipeline_file", metavar="PIPELINE_FILE", help="Python file defining the pipeline")
    compile_.add_argument("--target", choices=("kfp",), default="kfp", help="what to compile for (default: kfp)")
    compile_.add_argument("-o", "--output", metavar="FILE",
                          help="where to write the spec (default: <pipeline name>.yaml; '-' for stdout)")
    compile_.add_argument("--image", metavar="IMAGE",
                          help="the runtime image every task runs: headwater, the ML stack and your components "
                               "(default: headwater:<version>)")
    compile_.add_argument("--pipeline-root", metavar="URI",
                          help="the pipeline root as the tasks see it (default: the pipeline's root): gs://, s3:// "
                               "or a path on the mounted volume")
    compile_.add_argument("--metadata-secret", metavar="NAME[:KEY]", default="headwater-metadata",
                          help="Kubernetes Secret whose KEY (default 'uri') holds the metadata connection string, "
                               "given to every task as HEADWATER_METADATA (default: headwater-metadata; 'none' to "
                               "not use one)")
    compile_.add_argument("--pipeline-root-claim", metavar="PVC",
                          help="PersistentVolumeClaim (ReadWriteMany) mounted in every task to hold the root")
    compile_.add_argument("--pipeline-root-mount", metavar="PATH",
                          help="where the claim is mounted (default: the root's own path; /mnt/headwater for a "
                               "relative root)")
    compile_.add_argument("--image-pull-policy", choices=("Always", "IfNotPresent", "Never"),
                          help="the tasks' image pull policy (default: the cluster's)")
    add_env_options(compile_, "every task")
    compile_.set_defaults(func=cmd_compile)

