"""``headwater k8s rollout|promote|rollback|status``: TF Serving for a push destination, with a canary.

Importing this module does not import the ``kubernetes`` client; the commands do, when they run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from headwater.pipelines.cli._args import add_env_options, key_values, secret_refs

__all__ = ["add_serving_commands"]


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="the model's name (in URLs and in the objects' names)")
    parser.add_argument("--namespace", default="default", metavar="NS", help="namespace (default: 'default')")
    parser.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context")


def _serving_options(parser: argparse.ArgumentParser, *, rollout: bool) -> None:
    parser.add_argument("--ready-timeout", type=float, default=300.0, metavar="S",
                        help="seconds the pods may take to load the model and become ready (default 300); a canary "
                             "not ready by then is rolled back automatically")
    if not rollout:
        return
    parser.add_argument("--destination", required=True, metavar="DIR|URL",
                        help="the push destination (Push(destination=...)): a folder on --claim, or gs://, s3://")
    parser.add_argument("--version", type=int, metavar="N", help="the version to serve (default: the newest)")
    parser.add_argument("--claim", metavar="PVC", help="PersistentVolumeClaim holding a folder destination")
    parser.add_argument("--claim-mount", metavar="PATH",
                        help="where the claim is mounted: the path of the volume's root in the paths Push wrote "
                             "(e.g. the pipeline root; default: the destination itself)")
    parser.add_argument("--replicas", type=int, default=4, metavar="N",
                        help="serving pods of both tracks together (default 4)")
    parser.add_argument("--canary-percent", type=int, default=25, metavar="P",
                        help="traffic share asked for the canary (default 25); requests are spread over ready pods, "
                             "so the share is the canary's share of --replicas, which the command reports")
    parser.add_argument("--image", default=None, metavar="IMAGE", help="TF Serving image (default "
                        "tensorflow/serving matching the pinned TensorFlow)")
    parser.add_argument("--artifact-id", type=int, metavar="ID",
                        help="the pushed model's ML Metadata artifact id, recorded on the Deployment")
    add_env_options(parser, "serving pods")
    parser.add_argument("--env-from-secret", action="append", default=[], metavar="SECRET",
                        help="environment of the serving pods from every key of this Secret, e.g. bucket "
                             "credentials (repeatable)")


def add_serving_commands(k8s_sub: Any) -> None:
    """Add the serving commands to the ``headwater k8s`` command group."""
    commands = (
        ("rollout", _cmd_rollout,
         "serve a pushed model with TF Serving: the first version as stable, later ones as a canary",
         "Roll out TF Serving for a push destination. The first rollout creates the stable Deployment MODEL-stable "
         "and the Service MODEL; later ones start a canary Deployment MODEL-canary with the new version beside it, "
         "on its share of the pods, and wait until it is ready (its version loaded). A canary not ready within "
         "--ready-timeout is removed again automatically; the stable track is left as it was. Each Deployment pins "
         "its version with TF Serving's model config file."),
        ("promote", _cmd_promote, "make the canary's version the stable version on all pods; remove the canary",
         "Roll the stable Deployment to the canary's version (a rolling update, waited for), then remove the "
         "canary. If the stable track does not become ready it is set back to its version."),
        ("rollback", _cmd_rollback, "remove the canary; with no canary, serve the previous stable version again",
         "Remove the canary (the stable track gets all pods back). With no canary, roll the stable Deployment back "
         "to the version it served before the last promote."),
        ("status", _cmd_status, "what a model's Deployments serve: versions, ready pods, shares",
         "Show the stable and canary tracks of a served model."),
    )
    for name, func, summary, description in commands:
        command = k8s_sub.add_parser(name, help=summary, description=description)
        _connection(command)
        if name != "status":
            _serving_options(command, rollout=name == "rollout")
        command.set_defaults(func=func)


def _serving(args: argparse.Namespace) -> Any:
    from headwater.pipelines.kubernetes.manifests import KubernetesConfig
    from headwater.pipelines.kubernetes.rollout import Serving
    from headwater.pipelines.kubernetes.serving import DEFAULT_SERVING_IMAGE, ServingSpec

    config = KubernetesConfig(
        namespace=args.namespace, kubeconfig=args.kubeconfig, context=args.context,
        env=key_values(getattr(args, "env", []) or [], "--env"),
        secret_env=secret_refs(getattr(args, "secret_env", []) or []),
        env_from_secrets=tuple(getattr(args, "env_from_secret", []) or ()))
    options: dict[str, Any] = {"model_name": args.model,
                               "ready_timeout": getattr(args, "ready_timeout", 300.0)}
    if getattr(args, "destination", None):
        options.update(destination=args.destination, claim=args.claim, claim_mount=args.claim_mount,
                       replicas=args.replicas, canary_percent=args.canary_percent,
                       image=args.image or DEFAULT_SERVING_IMAGE)
    return Serving(ServingSpec(**options), config, note=lambda message: print(message, file=sys.stderr))


def _run(args: argparse.Namespace, action: str) -> int:
    from headwater.pipelines.kubernetes.serving import RolloutError

    try:
        with _serving(args) as serving:
            if action == "rollout":
                outcome = serving.rollout(args.version, artifact_id=args.artifact_id)
            else:
                outcome = getattr(serving, action)()
    except RolloutError as exc:
        print(f"headwater: error: k8s {action}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the API's own errors: say which call and what the server answered
        from headwater.pipelines.kubernetes._api import api_status

        reason, message = api_status(exc) if hasattr(exc, "status") else (type(exc).__name__, str(exc))
        print(f"headwater: error: k8s {action} {args.model}: {reason}: {message}", file=sys.stderr)
        return 1
    print(f"headwater k8s {action}: {outcome.message}", file=sys.stdout if outcome.ok else sys.stderr)
    return 0 if outcome.ok else 1


def _cmd_rollout(args: argparse.Namespace) -> int:
    return _run(args, "rollout")


def _cmd_promote(args: argparse.Namespace) -> int:
    return _run(args, "promote")


def _cmd_rollback(args: argparse.Namespace) -> int:
    return _run(args, "rollback")


def _cmd_status(args: argparse.Namespace) -> int:
    return _run(args, "status")
