"""Fixtures for the Kubernetes tests: the API stand-in, a client for it, a ready runner environment."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from k8s_support import K8sEnv, images
from standin import ApiStandIn


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[ApiStandIn]:
    with ApiStandIn(tmp_path / "cluster", namespaces=("default", "headwater"), images=images()) as server:
        yield server


@pytest.fixture
def kube(standin: ApiStandIn) -> Iterator[object]:
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=standin.kubeconfig(), client_configuration=configuration)
    api = client.ApiClient(configuration)
    yield api
    api.close()


@pytest.fixture
def k8s(tmp_path: Path) -> Iterator[K8sEnv]:
    env = K8sEnv(tmp_path)
    env.standin.start()
    try:
        yield env
    finally:
        env.standin.stop()
