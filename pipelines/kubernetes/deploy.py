"""What a cluster needs once, as plain dictionaries (``headwater k8s manifests``, the content of deploy/).

:func:`deploy_manifests`: Namespace, ServiceAccounts, a Role limited to what the runner does
(:data:`RUNNER_RULES`), its RoleBinding, a ReadWriteMany PVC for the pipeline root (or, for a root in an
object store, a Secret template for the store's credentials: :func:`object_store_secret`) and,
optionally, MariaDB or PostgreSQL for ML Metadata. :func:`to_yaml` writes them for ``kubectl apply``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from headwater.pipelines.kubernetes.manifests import LABEL_MANAGED_BY

__all__ = ["OBJECT_STORE_SECRET", "RUNNER_RULES", "deploy_manifests", "object_store_secret", "to_yaml"]

Manifest = dict[str, Any]

#: What the orchestrator's ServiceAccount may do, and nothing more.
RUNNER_RULES: list[Manifest] = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "delete"]},
]


OBJECT_STORE_SECRET = "headwater-object-store"


def object_store_secret(
    namespace: str = "headwater",
    *,
    endpoint: str | None = None,
    region: str = "us-east-1",
    name: str = OBJECT_STORE_SECRET,
) -> Manifest:
    """A Secret holding what pods need to reach an S3 or S3-compatible store (MinIO, Ceph): the standard
    AWS variables, to be given to every pod with ``env_from_secrets`` (``--env-from-secret NAME``).
    ``endpoint`` (``AWS_ENDPOINT_URL``) is for a store that is not AWS, e.g. ``http://minio.storage:9000``.
    The keys are placeholders: **put the real ones in** (or create the Secret with kubectl)."""
    data = {"AWS_ACCESS_KEY_ID": "change-me", "AWS_SECRET_ACCESS_KEY": "change-me", "AWS_REGION": region}
    if endpoint:
        data["AWS_ENDPOINT_URL"] = endpoint
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": {LABEL_MANAGED_BY: "headwater"}},
            "type": "Opaque", "stringData": data}


def deploy_manifests(
    namespace: str = "headwater",
    *,
    storage_size: str = "20Gi",
    storage_class: str | None = None,
    database: str | None = "mariadb",
    database_storage: str = "10Gi",
    database_password: str = "change-me",
    object_store: bool = False,
    object_store_endpoint: str | None = None,
) -> list[Manifest]:
    """Everything a cluster needs once, in apply order.

    ``database``: ``"mariadb"``, ``"postgresql"`` or ``None`` (bring your own; then create the Secret
    ``headwater-metadata`` with key ``uri`` yourself). ``object_store``: the pipeline root is in an object
    store, so no PersistentVolumeClaim; instead the Secret of :func:`object_store_secret` (S3 credentials,
    ``object_store_endpoint`` as ``AWS_ENDPOINT_URL``).
    """
    managed = {LABEL_MANAGED_BY: "headwater"}
    docs: list[Manifest] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {
            **managed, "pod-security.kubernetes.io/enforce": "restricted"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "headwater-runner", "namespace": namespace, "labels": managed}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "headwater-executor", "namespace": namespace, "labels": managed},
         "automountServiceAccountToken": False},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "headwater-runner", "namespace": namespace, "labels": managed},
         "rules": [dict(rule) for rule in RUNNER_RULES]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "headwater-runner", "namespace": namespace, "labels": managed},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "headwater-runner"},
         "subjects": [{"kind": "ServiceAccount", "name": "headwater-runner", "namespace": namespace}]},
    ]
    if object_store:
        docs.append(object_store_secret(namespace, endpoint=object_store_endpoint))
    else:
        pvc: Manifest = {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "headwater-pipeline-root", "namespace": namespace, "labels": managed},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": storage_size}}},
        }
        if storage_class:
            pvc["spec"]["storageClassName"] = storage_class
        docs.append(pvc)
    if database is None:
        return docs
    if database not in ("mariadb", "postgresql"):
        raise ValueError(f"database must be 'mariadb', 'postgresql' or None, not {database!r}")
    if database == "mariadb":
        image, port, data_dir = "mariadb:10.11", 3306, "/var/lib/mysql"
        env = [{"name": "MARIADB_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {
                   "name": "headwater-metadata", "key": "password"}}},
               {"name": "MARIADB_DATABASE", "value": "headwater"}]
        uri = f"mysql://root:{database_password}@headwater-metadata-db:{port}/headwater"
        run_as = 999
    else:
        image, port, data_dir = "postgres:15", 5432, "/var/lib/postgresql/data"
        env = [{"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {
                   "name": "headwater-metadata", "key": "password"}}},
               {"name": "POSTGRES_DB", "value": "headwater"},
               {"name": "PGDATA", "value": f"{data_dir}/pgdata"}]
        uri = f"postgresql://postgres:{database_password}@headwater-metadata-db:{port}/headwater"
        run_as = 999
    db_labels = {**managed, "app.kubernetes.io/name": "headwater-metadata-db"}
    docs += [
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "headwater-metadata", "namespace": namespace, "labels": managed},
         "type": "Opaque", "stringData": {"password": database_password, "uri": uri}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "headwater-metadata-db", "namespace": namespace, "labels": db_labels},
         "spec": {"selector": {"app.kubernetes.io/name": "headwater-metadata-db"},
                  "ports": [{"name": database, "port": port, "targetPort": port}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "headwater-metadata-db", "namespace": namespace, "labels": db_labels},
         "spec": {
             "serviceName": "headwater-metadata-db",
             "replicas": 1,
             "selector": {"matchLabels": {"app.kubernetes.io/name": "headwater-metadata-db"}},
             "template": {
                 "metadata": {"labels": db_labels},
                 "spec": {
                     "securityContext": {"runAsNonRoot": True, "runAsUser": run_as, "runAsGroup": run_as,
                                         "fsGroup": run_as, "seccompProfile": {"type": "RuntimeDefault"}},
                     "automountServiceAccountToken": False,
                     "containers": [{
                         "name": database,
                         "image": image,
                         "env": env,
                         "ports": [{"name": database, "containerPort": port}],
                         "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                       "limits": {"memory": "1Gi"}},
                         "securityContext": {"allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]}},
                         "volumeMounts": [{"name": "data", "mountPath": data_dir}],
                         "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 5},
                     }],
                 },
             },
             "volumeClaimTemplates": [{
                 "metadata": {"name": "data"},
                 "spec": {"accessModes": ["ReadWriteOnce"],
                          "resources": {"requests": {"storage": database_storage}}},
             }],
         }},
    ]
    return docs


def to_yaml(manifests: Sequence[Manifest]) -> str:
    """A multi-document YAML stream (``kubectl apply -f`` reads it)."""
    import yaml

    return "".join("---\n" + yaml.safe_dump(m, sort_keys=False, default_flow_style=False) for m in manifests)
