"""Shared code of the Kubernetes tests and benchmark: images the stand-in can "pull", a ready environment."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from standin import ApiStandIn, Image  # noqa: E402

PYTHON_BIN = str(Path(sys.executable).parent)
SHELL_IMAGE = "busybox:1.36"
RUNTIME_IMAGE = "headwater:test"
SERVING_IMAGE = "tensorflow/serving:2.16.1"


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
        # The one substitution: the kubelet runs `headwater serve` for TF Serving (standin/tfserving.py).
        SERVING_IMAGE: Image(env=runtime_image_env(), entrypoint=("/usr/bin/tf_serving_entrypoint.sh",),
                             tf_serving=True),
    }


class K8sEnv:
    """A stand-in cluster whose claim ``headwater-root`` is the test's pipeline root, and a runner config."""

    def __init__(self, tmp_path: Path, **standin_options: object) -> None:
        from headwater.pipelines.kubernetes.manifests import KubernetesConfig

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

    def object_store_config(self, secret: str = "s3-credentials", **config_changes: object) -> object:
        """The runner config for a root on the S3 server this process points at (``s3_root``): no claim;
        endpoint and region as plain environment, the keys from a Secret given to the pods with envFrom."""
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=self.kubeconfig, client_configuration=cfg)
        keys = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        with client.ApiClient(cfg) as api:
            client.CoreV1Api(api).create_namespaced_secret("headwater", client.V1Secret(
                metadata=client.V1ObjectMeta(name=secret), string_data=keys))
        env = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_EC2_METADATA_DISABLED")}
        return self.config.with_options(pipeline_root_claim=None, env=env, env_from_secrets=(secret,),
                                        **config_changes)


def clear_scratch(pipeline_name: str, run_id: str, *, pods: bool = True) -> None:
    """Remove what a run with an object-store root leaves on this machine's disk outside the test's folder:
    the orchestrator's local log copies, and the executors' scratch space (a pod's ``/tmp/headwater/<run>``
    is this machine's, as a subprocess kubelet cannot give a ConfigMap-carried path its own ``/tmp``).
    Tests with a fixed run id call it before and after, so that nothing of an earlier run is picked up;
    ``pods=False`` while pods still run (their scratch space is theirs)."""
    folders = [Path(tempfile.gettempdir(), "headwater", pipeline_name, "_logs", run_id)]
    if pods:
        folders.append(Path("/tmp", "headwater", run_id))
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def kill_when_running(k8s: K8sEnv, orchestrator: Any, namespace: str, node: str) -> None:
    """SIGKILL the orchestrator process (a Popen with piped stdout) once ``node``'s pod is Running."""
    from headwater.pipelines.kubernetes.manifests import LABEL_NODE

    try:
        k8s.standin.wait_for(lambda: any((p.get("status") or {}).get("phase") == "Running"
                                         for p in k8s.standin.objects("pods", namespace, f"{LABEL_NODE}={node}")),
                             timeout=30)
        orchestrator.kill()  # no cleanup at all
        orchestrator.wait(10)
    finally:
        if orchestrator.poll() is None:
            orchestrator.kill()
        orchestrator.stdout.close()


def orchestrator_outcome(k8s: K8sEnv, namespace: str) -> tuple[list[str], dict, str]:
    """Wait for the ``--detach`` orchestrator Job to end: (its Complete/Failed conditions, its pod, its log)."""
    from headwater.pipelines.kubernetes.manifests import LABEL_ROLE

    def finished() -> list[str]:
        jobs = k8s.standin.objects("jobs", namespace, f"{LABEL_ROLE}=orchestrator")
        return [c["type"] for j in jobs for c in (j.get("status") or {}).get("conditions") or []
                if c["type"] in ("Complete", "Failed")]

    verdict = k8s.standin.wait_for(finished, timeout=60)
    [pod] = k8s.standin.objects("pods", namespace, f"{LABEL_ROLE}=orchestrator")
    log = k8s.standin.cluster.log_lines(namespace, pod["metadata"]["name"], None, follow=False, tail=None,
                                        timestamps=False, since=None, should_stop=lambda: False)
    return verdict, pod, b"".join(log).decode()


def proxy_request(api: Any, method: str, path: str, body: Any = None) -> tuple[int, bytes, Any]:
    """A request through the API server's proxy (``/api/v1/namespaces/NS/services/NAME:PORT/proxy/...``) with
    the official client: (status, body, headers). The generated proxy methods take no body, so the request is
    built with the client's own ``param_serialize`` and sent with ``call_api``."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"} if body is not None else {}
    params = api.param_serialize(method, path, header_params=headers, body=body, auth_settings=["BearerToken"])
    resp = api.call_api(*params)
    resp.read()
    return resp.status, resp.data, resp.headers
