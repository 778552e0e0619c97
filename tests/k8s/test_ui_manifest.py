"""deploy/headwater-ui.yaml: the dashboard's Deployment and Service, valid and locked down."""

from __future__ import annotations

import yaml
from golden import validate
from k8s_support import REPO

PATH = REPO / "deploy" / "headwater-ui.yaml"


def test_dashboard_manifests_are_valid_and_read_only() -> None:
    docs = [d for d in yaml.safe_load_all(PATH.read_text()) if d]
    for doc in docs:
        validate(doc)
    kinds = {d["kind"]: d for d in docs if d["kind"] != "Secret"}
    assert set(kinds) == {"Deployment", "Service"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    command = container["command"]
    assert command[:2] == ["headwater", "ui"] and "--allow-runs" not in command
    assert command[command.index("--token") + 1] == "$(HEADWATER_UI_TOKEN)"  # a non-loopback host needs it
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["HEADWATER_METADATA"]["name"] == "headwater-metadata-readonly"
    root = next(m for m in container["volumeMounts"] if m["name"] == "pipeline-root")
    assert root["readOnly"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    service = kinds["Service"]["spec"]
    assert service["type"] == "ClusterIP" and service["ports"][0]["targetPort"] == "http"
