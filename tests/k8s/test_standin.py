"""The API stand-in, driven by the official kubernetes client exactly as the runner drives a cluster."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import urllib3
from k8s_support import SHELL_IMAGE
from kubernetes import client, watch
from standin import ApiFault, ApiStandIn, Node, PodFault

NS = "default"


def job_body(name: str, script: str, *, image: str = SHELL_IMAGE, labels: dict[str, str] | None = None,
             **spec: Any) -> client.V1Job:
    container = client.V1Container(name="main", image=image, command=["sh", "-c", script],
                                   resources=spec.pop("resources", None), env=spec.pop("env", None),
                                   env_from=spec.pop("env_from", None), volume_mounts=spec.pop("volume_mounts", None))
    pod = client.V1PodSpec(restart_policy=spec.pop("restart_policy", "Never"), containers=[container],
                           volumes=spec.pop("volumes", None), node_selector=spec.pop("node_selector", None))
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {"app": "standin-test"}),
        spec=client.V1JobSpec(template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels=labels or {"app": "standin-test"}), spec=pod), **spec),
    )


def wait_job(batch: client.BatchV1Api, name: str, timeout: float = 10) -> client.V1Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = batch.read_namespaced_job(name, NS)
        if any(c.type in ("Complete", "Failed") and c.status == "True" for c in job.status.conditions or []):
            return job
        time.sleep(0.02)
    raise TimeoutError(name)


def job_pods(core: client.CoreV1Api, name: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(NS, label_selector=f"job-name={name}").items


def wait_pod(core: client.CoreV1Api, name: str, predicate: Any, timeout: float = 10) -> client.V1Pod:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pod in job_pods(core, name):
            if predicate(pod):
                return pod
        time.sleep(0.02)
    raise TimeoutError(name)


def status_body(exc: client.ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return dict(body)


def raw_get(standin: ApiStandIn, path: str, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(standin.url + path,
                                     headers={"Authorization": f"Bearer {standin.ADMIN_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


@pytest.fixture
def batch(kube: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(kube)


@pytest.fixture
def core(kube: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube)


# -- the Job lifecycle -------------------------------------------------------------------------------
def test_job_runs_to_complete_seen_through_a_watch(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    raw = batch.create_namespaced_job(NS, job_body("hello", "echo hi; echo there"), _preload_content=False)
    created = json.loads(raw.data)
    assert created["status"] == {}  # a new Job comes back with an empty status, as from a real server
    assert created["spec"]["backoffLimit"] == 6 and created["spec"]["completions"] == 1
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    rv = created["metadata"]["resourceVersion"]

    seen = []
    for event in watch.Watch().stream(batch.list_namespaced_job, NS, label_selector="app=standin-test",
                                      resource_version=rv, timeout_seconds=10):
        job = event["object"]
        seen.append((event["type"], [c.type for c in job.status.conditions or []]))
        if any(c.type == "Complete" for c in job.status.conditions or []):
            break
    assert seen[-1] == ("MODIFIED", ["SuccessCriteriaMet", "Complete"])
    assert job.status.succeeded == 1 and job.status.active is None and job.status.completion_time is not None

    (pod,) = job_pods(core, "hello")
    assert pod.metadata.labels["job-name"] == "hello"
    assert pod.metadata.labels["controller-uid"] == uid
    assert pod.metadata.labels["batch.kubernetes.io/job-name"] == "hello"
    ref = pod.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.uid, ref.controller, ref.block_owner_deletion) == ("Job", "hello", uid, True, True)
    assert pod.metadata.name.startswith("hello-") and len(pod.metadata.name) == len("hello-") + 5
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.exit_code) == ("Completed", 0)
    assert pod.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert core.read_namespaced_pod_log(pod.metadata.name, NS) == "hi\nthere\n"


def test_pod_phases_and_followed_logs(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("slow", "echo one; sleep 0.4; echo two; sleep 0.2; echo three"))
    pod = wait_pod(core, "slow", lambda p: p.status.phase == "Running")
    assert pod.status.container_statuses[0].state.running.started_at is not None
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
    arrivals = []
    t0 = time.monotonic()
    for line in watch.Watch().stream(core.read_namespaced_pod_log, pod.metadata.name, NS):
        arrivals.append((line, time.monotonic() - t0))
    assert [a[0] for a in arrivals] == ["one", "two", "three"]
    assert arrivals[1][1] - arrivals[0][1] > 0.2  # streamed as written, not at the end
    stamped = core.read_namespaced_pod_log(pod.metadata.name, NS, timestamps=True, tail_lines=1)
    assert stamped.endswith(" three\n") and stamped[:4].isdigit() and stamped[19] == "."


def test_backoff_limit_retries_then_fails(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("flaky", "echo failing >&2; exit 3", backoff_limit=2))
    job = wait_job(batch, "flaky")
    failed = {c.type: c for c in job.status.conditions}["Failed"]
    assert (failed.reason, failed.message) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert job.status.failed == 3
    pods = job_pods(core, "flaky")
    assert len(pods) == 3
    for pod in pods:
        terminated = pod.status.container_statuses[0].state.terminated
        assert (pod.status.phase, terminated.reason, terminated.exit_code) == ("Failed", "Error", 3)
    assert core.read_namespaced_pod_log(pods[0].metadata.name, NS) == "failing\n"


def test_active_deadline_exceeded_kills_the_pod(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("sleepy", "sleep 30", active_deadline_seconds=1))
    t0 = time.monotonic()
    job = wait_job(batch, "sleepy")
    assert 1.0 <= time.monotonic() - t0 < 5
    failed = {c.type: c for c in job.status.conditions}["Failed"]
    assert (failed.reason, failed.message) == ("DeadlineExceeded", "Job was active longer than specified deadline")
    assert job_pods(core, "sleepy") == []  # killed and removed


def test_ttl_after_finished_deletes_the_job(batch: client.BatchV1Api, standin: ApiStandIn) -> None:
    batch.create_namespaced_job(NS, job_body("shortlived", "true", ttl_seconds_after_finished=0))
    standin.wait_for(lambda: standin.count("create", "jobs") and not standin.objects("jobs", NS))
    standin.wait_for(lambda: not standin.objects("pods", NS))


# -- scheduling and pulling ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"cpu": "64"}, "0/3 nodes are available: 3 Insufficient cpu."),
        ({"cpu": "64", "memory": "1Ti"}, "0/3 nodes are available: 3 Insufficient cpu, 3 Insufficient memory."),
        ({"nvidia.com/gpu": "1"}, "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."),
    ],
)
def test_unschedulable_pod_stays_pending_with_the_scheduler_message(
    batch: client.BatchV1Api, core: client.CoreV1Api, resources: dict[str, str], message: str
) -> None:
    body = job_body("big", "true", resources=client.V1ResourceRequirements(limits=resources))
    batch.create_namespaced_job(NS, body)
    pod = wait_pod(core, "big", lambda p: any(c.type == "PodScheduled" for c in p.status.conditions or []))
    scheduled = {c.type: c for c in pod.status.conditions}["PodScheduled"]
    assert (scheduled.status, scheduled.reason, scheduled.message) == ("False", "Unschedulable", message)
    assert pod.status.phase == "Pending" and not pod.spec.node_name


def test_node_selector_and_gpu_node(tmp_path: Any, request: pytest.FixtureRequest) -> None:
    from k8s_support import images

    nodes = [Node("cpu-1"), Node("gpu-1", gpu=1, labels={"accelerator": "t4"},
                                 taints=({"key": "gpu", "value": "true", "effect": "NoSchedule"},))]
    with ApiStandIn(tmp_path / "c", nodes=nodes, images=images()) as standin:
        from kubernetes import config

        cfg = client.Configuration()
        config.load_kube_config(config_file=standin.kubeconfig(), client_configuration=cfg)
        api = client.ApiClient(cfg)
        request.addfinalizer(api.close)
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        limits = client.V1ResourceRequirements(limits={"nvidia.com/gpu": "1"})
        batch.create_namespaced_job(NS, job_body("gpu", "true", resources=limits, node_selector={"accelerator": "t4"}))
        pod = wait_pod(core, "gpu", lambda p: any(c.type == "PodScheduled" for c in p.status.conditions or []))
        message = {c.type: c for c in pod.status.conditions}["PodScheduled"].message
        assert message == ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                           "1 node(s) had untolerated taint {gpu: true}.")
        body = job_body("gpu2", "true", resources=limits, node_selector={"accelerator": "t4"})
        body.spec.template.spec.tolerations = [client.V1Toleration(key="gpu", operator="Exists", effect="NoSchedule")]
        batch.create_namespaced_job(NS, body)
        assert wait_job(batch, "gpu2").status.succeeded == 1
        assert job_pods(core, "gpu2")[0].spec.node_name == "gpu-1"


def test_unknown_image_fails_to_pull(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job_body("nopull", "true", image="registry.example/missing:1"))
    pod = wait_pod(core, "nopull", lambda p: p.status.container_statuses
                   and p.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff")
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.message == 'Back-off pulling image "registry.example/missing:1"'
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert err.value.status == 400
    assert status_body(err.value)["message"] == (
        f'container "main" in pod "{pod.metadata.name}" is waiting to start: trying and failing to pull image'
    )
    pod = wait_pod(core, "nopull", lambda p: p.status.container_statuses[0].state.waiting.reason == "ErrImagePull")
    assert pod.status.container_statuses[0].state.waiting.message.startswith(
        'Failed to pull image "registry.example/missing:1": rpc error: code = NotFound'
    )


# -- injected pod faults -------------------------------------------------------------------------------
def test_injected_oom_exit_and_eviction(standin: ApiStandIn, batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    standin.inject(PodFault.oom(after=0.1, labels={"case": "oom"}))
    standin.inject(PodFault.exit(7, labels={"case": "exit"}))
    standin.inject(PodFault.evict(after=0.1, labels={"case": "evict"}))
    for case in ("oom", "exit", "evict"):
        batch.create_namespaced_job(NS, job_body(case, "sleep 5", labels={"case": case}, backoff_limit=0))
    for case in ("oom", "exit", "evict"):
        assert {c.type: c for c in wait_job(batch, case).status.conditions}["Failed"].reason == "BackoffLimitExceeded"
    oom = job_pods(core, "oom")[0].status
    assert (oom.phase, oom.container_statuses[0].state.terminated.reason,
            oom.container_statuses[0].state.terminated.exit_code) == ("Failed", "OOMKilled", 137)
    exited = job_pods(core, "exit")[0].status.container_statuses[0].state.terminated
    assert (exited.reason, exited.exit_code) == ("Error", 7)
    evicted = job_pods(core, "evict")[0].status
    assert evicted.phase == "Failed" and evicted.reason == "Evicted"
    assert evicted.message.startswith("The node was low on resource: memory.")


def test_slow_start_keeps_container_creating(standin: ApiStandIn, batch: client.BatchV1Api,
                                             core: client.CoreV1Api) -> None:
    standin.inject(PodFault.slow_start(0.5))
    batch.create_namespaced_job(NS, job_body("late", "true"))
    pod = wait_pod(core, "late", lambda p: p.status.container_statuses is not None)
    assert pod.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    with pytest.raises(client.ApiException, match="is waiting to start: ContainerCreating"):
        core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert wait_job(batch, "late").status.succeeded == 1


# -- configuration: env, ConfigMaps, Secrets, volumes --------------------------------------------------
def test_env_from_configmap_and_secret_and_mounted_configmap(
    standin: ApiStandIn, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="spec"),
                                                             data={"spec.json": '{"a": 1}', "MODE": "fast"}))
    env = [
        client.V1EnvVar(name="TOKEN", value_from=client.V1EnvVarSource(
            secret_key_ref=client.V1SecretKeySelector(name="creds", key="token"))),
        client.V1EnvVar(name="POD", value_from=client.V1EnvVarSource(
            field_ref=client.V1ObjectFieldSelector(field_path="metadata.name"))),
        client.V1EnvVar(name="SPEC_FILE", value="/etc/headwater/spec/spec.json"),
    ]
    body = job_body(
        "configured", 'echo "$TOKEN $MODE $POD"; cat $(SPEC_FILE); cat /etc/headwater/spec/spec.json',
        env=env, env_from=[client.V1EnvFromSource(config_map_ref=client.V1ConfigMapEnvSource(name="spec"))],
        volumes=[client.V1Volume(name="spec", config_map=client.V1ConfigMapVolumeSource(name="spec"))],
        volume_mounts=[client.V1VolumeMount(name="spec", mount_path="/etc/headwater/spec", read_only=True)],
    )
    batch.create_namespaced_job(NS, body)
    pod = wait_pod(core, "configured", lambda p: p.status.container_statuses
                   and p.status.container_statuses[0].state.waiting
                   and p.status.container_statuses[0].state.waiting.reason == "CreateContainerConfigError")
    assert pod.status.container_statuses[0].state.waiting.message == 'secret "creds" not found'
    core.create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="creds"),
                                                      string_data={"token": "s3cret"}))
    assert core.read_namespaced_secret("creds", NS).data == {"token": "czNjcmV0"}
    assert wait_job(batch, "configured").status.succeeded == 1
    name = job_pods(core, "configured")[0].metadata.name
    assert core.read_namespaced_pod_log(name, NS) == f's3cret fast {name}\n{{"a": 1}}{{"a": 1}}'


def test_urls_pass_through_while_mounted_paths_are_mapped(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    """An object-store root (here in a bucket named like the mount) and endpoints reach the container as
    they are; paths into a per-pod volume, also as ``file://`` URLs, are mapped to its host folder."""
    env = [client.V1EnvVar(name="ROOT", value="s3://tmp/root/tmp"),
           client.V1EnvVar(name="AWS_ENDPOINT_URL", value="http://127.0.0.1:9000/tmp"),
           client.V1EnvVar(name="LOCAL", value="/tmp/x"), client.V1EnvVar(name="FILE", value="file:///tmp/y")]
    body = job_body("urls", 'echo "$ROOT $AWS_ENDPOINT_URL $LOCAL $FILE" --result=gs://b/tmp/r.json', env=env,
                    volumes=[client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource())],
                    volume_mounts=[client.V1VolumeMount(name="tmp", mount_path="/tmp")])
    batch.create_namespaced_job(NS, body)
    assert wait_job(batch, "urls").status.succeeded == 1
    log = core.read_namespaced_pod_log(job_pods(core, "urls")[0].metadata.name, NS)
    root, endpoint, local, file_url, result = log.split()
    assert (root, endpoint, result) == ("s3://tmp/root/tmp", "http://127.0.0.1:9000/tmp", "--result=gs://b/tmp/r.json")
    assert local.endswith("/volumes/tmp/x") and local != "/tmp/x"
    assert file_url == f"file://{local[:-len('x')]}y"


def test_shared_volume_must_be_mounted_at_its_host_path(tmp_path: Any, request: pytest.FixtureRequest) -> None:
    from k8s_support import images

    root = tmp_path / "root"
    with ApiStandIn(tmp_path / "c", images=images(), claims={"pipeline-root": str(root)}) as standin:
        from kubernetes import config

        cfg = client.Configuration()
        config.load_kube_config(config_file=standin.kubeconfig(), client_configuration=cfg)
        api = client.ApiClient(cfg)
        request.addfinalizer(api.close)
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        volume = client.V1Volume(name="root", persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
            claim_name="pipeline-root"))
        good = job_body("writer", f"echo data > {root}/out.txt", volumes=[volume],
                        volume_mounts=[client.V1VolumeMount(name="root", mount_path=str(root))])
        batch.create_namespaced_job(NS, good)
        assert wait_job(batch, "writer").status.succeeded == 1
        assert (root / "out.txt").read_text() == "data\n"
        bad = job_body("elsewhere", "true", volumes=[volume],
                       volume_mounts=[client.V1VolumeMount(name="root", mount_path="/mnt/root")])
        batch.create_namespaced_job(NS, bad)
        pod = wait_pod(core, "elsewhere", lambda p: p.status.container_statuses
                       and p.status.container_statuses[0].state.waiting.reason == "CreateContainerError")
        assert "mount shared storage at its own path" in pod.status.container_statuses[0].state.waiting.message
        missing = client.V1Volume(name="root", persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
            claim_name="nope"))
        batch.create_namespaced_job(NS, job_body("noclaim", "true", volumes=[missing], volume_mounts=[
            client.V1VolumeMount(name="root", mount_path="/x")]))
        pod = wait_pod(core, "noclaim", lambda p: p.status.conditions)
        assert pod.status.conditions[0].message == '0/3 nodes are available: persistentvolumeclaim "nope" not found.'


# -- API semantics: errors, query parsing, watches -----------------------------------------------------
def test_error_bodies_are_real_status_objects(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as err:
        batch.read_namespaced_job("absent", NS)
    body = status_body(err.value)
    assert (body["reason"], body["message"]) == ("NotFound", 'jobs.batch "absent" not found')
    assert body["details"] == {"name": "absent", "group": "batch", "kind": "jobs"}

    batch.create_namespaced_job(NS, job_body("twice", "true"))
    with pytest.raises(client.exceptions.ConflictException) as conflict:
        batch.create_namespaced_job(NS, job_body("twice", "true"))
    assert status_body(conflict.value)["reason"] == "AlreadyExists"

    with pytest.raises(client.exceptions.UnprocessableEntityException) as invalid:
        batch.create_namespaced_job(NS, job_body("always", "true", restart_policy="Always"))
    body = status_body(invalid.value)
    assert body["message"] == ('Job.batch "always" is invalid: spec.template.spec.restartPolicy: Unsupported value: '
                               '"Always": supported values: "OnFailure", "Never"')
    assert body["details"]["causes"][0]["field"] == "spec.template.spec.restartPolicy"

    with pytest.raises(client.exceptions.UnprocessableEntityException, match="must be no more than 63 characters"):
        batch.create_namespaced_job(NS, job_body("x" * 64, "true"))
    with pytest.raises(client.exceptions.UnprocessableEntityException, match="must be no more than 63 characters"):
        batch.create_namespaced_job(NS, job_body("labels", "true", labels={"run": "r" * 64}))
    with pytest.raises(client.exceptions.UnprocessableEntityException, match="RFC 1123 subdomain"):
        batch.create_namespaced_job(NS, job_body("Bad_Name", "true"))
    bad_cpu = client.V1ResourceRequirements(requests={"cpu": "lots"})
    with pytest.raises(client.exceptions.BadRequestException, match="quantities must match the regular expression"):
        batch.create_namespaced_job(NS, job_body("quantity", "true", resources=bad_cpu))
    gpu_request_only = client.V1ResourceRequirements(requests={"nvidia.com/gpu": "1"})
    with pytest.raises(client.exceptions.UnprocessableEntityException,
                       match="Limit must be set for non overcommitable resources"):
        batch.create_namespaced_job(NS, job_body("gpu", "true", resources=gpu_request_only))
    with pytest.raises(client.ApiException) as missing_ns:
        batch.create_namespaced_job("nowhere", job_body("x", "true"))
    assert status_body(missing_ns.value)["message"] == 'namespaces "nowhere" not found'


@pytest.mark.parametrize("value", ["True", "true", "1", "t"])
def test_watch_query_parameter_parsed_as_go_does(standin: ApiStandIn, batch: client.BatchV1Api, value: str) -> None:
    batch.create_namespaced_job(NS, job_body("w", "true"))
    code, data = raw_get(standin, f"/apis/batch/v1/namespaces/{NS}/jobs?watch={value}&timeoutSeconds=1")
    assert code == 200
    first = json.loads(data.splitlines()[0])
    assert first["type"] == "ADDED" and first["object"]["kind"] == "Job"


def test_watch_query_parameter_rejects_what_go_rejects(standin: ApiStandIn) -> None:
    code, data = raw_get(standin, f"/apis/batch/v1/namespaces/{NS}/jobs?watch=yes")
    assert code == 400
    assert json.loads(data)["message"] == 'strconv.ParseBool: parsing "yes": invalid syntax'
    code, data = raw_get(standin, f"/apis/batch/v1/namespaces/{NS}/jobs?watch=false")
    assert code == 200 and json.loads(data)["kind"] == "JobList"


def test_unauthenticated_requests_are_rejected(standin: ApiStandIn) -> None:
    request = urllib.request.Request(standin.url + f"/api/v1/namespaces/{NS}/pods")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    err.value.close()
    assert err.value.code == 401


def test_list_with_label_selectors(batch: client.BatchV1Api) -> None:
    for name, labels in (("a", {"tier": "x", "run": "1"}), ("b", {"tier": "y", "run": "1"}), ("c", {"tier": "z"})):
        batch.create_namespaced_job(NS, job_body(name, "true", labels=labels))

    def names(selector: str) -> list[str]:
        return sorted(j.metadata.name for j in batch.list_namespaced_job(NS, label_selector=selector).items)

    assert names("tier in (x,y)") == ["a", "b"]
    assert names("tier notin (x)") == ["b", "c"]
    assert names("!run") == ["c"]
    assert names("run=1,tier!=x") == ["b"]
    assert names("run") == ["a", "b"]
    listed = batch.list_namespaced_job(NS)
    assert int(listed.metadata.resource_version) >= max(int(j.metadata.resource_version) for j in listed.items)
    with pytest.raises(client.exceptions.BadRequestException, match="unable to parse requirement"):
        batch.list_namespaced_job(NS, label_selector="tier in x")


def test_watch_resumes_from_a_resource_version_and_answers_410_when_too_old(
    standin: ApiStandIn, batch: client.BatchV1Api
) -> None:
    rv = batch.list_namespaced_job(NS).metadata.resource_version
    batch.create_namespaced_job(NS, job_body("later", "true"))
    events = watch.Watch().stream(batch.list_namespaced_job, NS, resource_version=rv, timeout_seconds=5)
    first = next(events)
    assert first["type"] == "ADDED" and first["object"].metadata.name == "later"
    events.close()
    standin.compact()
    with pytest.raises(client.ApiException) as gone:
        for _ in watch.Watch().stream(batch.list_namespaced_job, NS, resource_version=rv, timeout_seconds=5):
            pass
    assert gone.value.status == 410
    assert "Expired: too old resource version" in gone.value.reason


def test_label_watch_sees_objects_leave_the_selector(standin: ApiStandIn, core: client.CoreV1Api) -> None:
    meta = client.V1ObjectMeta(name="cm", labels={"k": "v"})
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=meta))
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.delete_namespaced_config_map("cm", NS)
    events = list(watch.Watch().stream(core.list_namespaced_config_map, NS, label_selector="k=v",
                                       resource_version=rv, timeout_seconds=1))
    assert [e["type"] for e in events] == ["DELETED"]


def test_dropped_watch_streams(standin: ApiStandIn, batch: client.BatchV1Api) -> None:
    import threading

    outcome: dict[str, Any] = {}
    rv = batch.list_namespaced_job(NS).metadata.resource_version

    def consume_rv(key: str) -> None:
        try:
            for _ in watch.Watch().stream(batch.list_namespaced_job, NS, resource_version=rv, timeout_seconds=30):
                pass
            outcome[key] = "ended"
        except urllib3.exceptions.ProtocolError as exc:
            outcome[key] = type(exc).__name__

    t = threading.Thread(target=consume_rv, args=("abrupt",))
    t.start()
    standin.wait_for(lambda: standin.open_watches("jobs") == 1)
    t0 = time.monotonic()
    assert standin.drop_watches("jobs", abrupt=True) == 1
    t.join(5)
    assert outcome["abrupt"] == "ProtocolError" and time.monotonic() - t0 < 2
    t = threading.Thread(target=consume_rv, args=("clean",))
    t.start()
    standin.wait_for(lambda: standin.open_watches("jobs") == 1)
    standin.drop_watches("jobs", abrupt=False)
    t.join(5)
    assert outcome["clean"] == "ended"


# -- injected API faults -------------------------------------------------------------------------------
def test_injected_api_errors(standin: ApiStandIn, batch: client.BatchV1Api) -> None:
    standin.inject(ApiFault("create", "jobs", 429, times=1, retry_after=2))
    standin.inject(ApiFault("create", "jobs", 500, times=1))
    standin.inject(ApiFault("list", "jobs", 409, times=1))
    with pytest.raises(client.ApiException) as throttled:
        batch.create_namespaced_job(NS, job_body("j", "true"))
    assert throttled.value.status == 429 and throttled.value.headers["Retry-After"] == "2"
    assert status_body(throttled.value)["reason"] == "TooManyRequests"
    with pytest.raises(client.exceptions.ServiceException) as internal:
        batch.create_namespaced_job(NS, job_body("j", "true"))
    assert status_body(internal.value)["reason"] == "InternalError"
    with pytest.raises(client.exceptions.ConflictException):
        batch.list_namespaced_job(NS)
    batch.create_namespaced_job(NS, job_body("j", "true"))
    assert standin.count("create", "jobs") == 3 and standin.count("create", "jobs", code=201) == 1


def test_rbac_for_a_service_account(standin: ApiStandIn, request: pytest.FixtureRequest) -> None:
    from kubernetes import config

    standin.bind_role(NS, "runner", [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]}])
    cfg = client.Configuration()
    config.load_kube_config(config_file=standin.kubeconfig(token=standin.service_account_token(NS, "runner")),
                            client_configuration=cfg)
    api = client.ApiClient(cfg)
    request.addfinalizer(api.close)
    batch = client.BatchV1Api(api)
    assert batch.list_namespaced_job(NS).items == []
    with pytest.raises(client.exceptions.ForbiddenException) as denied:
        batch.create_namespaced_job(NS, job_body("j", "true"))
    assert status_body(denied.value)["message"] == (
        'jobs.batch is forbidden: User "system:serviceaccount:default:runner" cannot create resource "jobs" '
        'in API group "batch" in the namespace "default"'
    )


# -- deletion and garbage collection -------------------------------------------------------------------
def test_job_deletion_propagation(standin: ApiStandIn, batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    for name in ("orphaned", "background", "foreground"):
        batch.create_namespaced_job(NS, job_body(name, "sleep 30"))
    for name in ("orphaned", "background", "foreground"):
        wait_pod(core, name, lambda p: p.status.phase == "Running")

    # The API's default for batch/v1 Jobs is to orphan the pods.
    assert batch.delete_namespaced_job("orphaned", NS)["status"] == "Success"
    orphan = job_pods(core, "orphaned")
    time.sleep(0.2)
    orphan = job_pods(core, "orphaned")
    assert len(orphan) == 1 and orphan[0].status.phase == "Running" and orphan[0].metadata.owner_references is None

    batch.delete_namespaced_job("background", NS, propagation_policy="Background")
    with pytest.raises(client.exceptions.NotFoundException):
        batch.read_namespaced_job("background", NS)
    standin.wait_for(lambda: not job_pods(core, "background"))

    marked = batch.delete_namespaced_job("foreground", NS, body=client.V1DeleteOptions(propagation_policy="Foreground"))
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"] and marked["metadata"]["deletionTimestamp"]
    standin.wait_for(lambda: not standin.objects("jobs", NS, "job-name=foreground"))
    standin.wait_for(lambda: not job_pods(core, "foreground"))
    core.delete_namespaced_pod(orphan[0].metadata.name, NS, grace_period_seconds=0)
    standin.wait_for(lambda: not job_pods(core, "orphaned"))


def test_deleting_a_running_pod_sends_sigterm_and_the_job_replaces_it(
    batch: client.BatchV1Api, core: client.CoreV1Api, standin: ApiStandIn
) -> None:
    batch.create_namespaced_job(NS, job_body("replaced", "trap 'echo got TERM; exit 0' TERM; sleep 30 & wait",
                                             backoff_limit=1))
    first = wait_pod(core, "replaced", lambda p: p.status.phase == "Running")
    time.sleep(0.1)
    deleted = core.delete_namespaced_pod(first.metadata.name, NS)
    assert deleted.metadata.deletion_timestamp is not None
    second = wait_pod(core, "replaced", lambda p: p.metadata.name != first.metadata.name)
    assert second.metadata.labels["job-name"] == "replaced"
    job = batch.read_namespaced_job("replaced", NS)
    assert job.status.failed == 1
    batch.delete_namespaced_job("replaced", NS, propagation_policy="Background")
    standin.wait_for(lambda: not job_pods(core, "replaced"))
