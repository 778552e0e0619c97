"""Run pipelines on Kubernetes: one ``batch/v1`` Job per node, created through the official client.

Which module to open:

- :mod:`.runner`: :class:`KubernetesRunner` — the generic runner on this backend, and re-attaching to the
  Jobs of a run a previous orchestrator started;
- :mod:`.backend`: :class:`KubernetesBackend` — launch / poll / cancel / close, result reading, cleanup;
- :mod:`._api`: the API calls and their retries (429/5xx, ``Retry-After``, cut connections);
- :mod:`._watch`: watches of the run's Jobs and Pods, and pod log following;
- :mod:`._diagnose`: what pods and Jobs say, as messages (pure functions on the API's objects);
- :mod:`.manifests`: :class:`KubernetesConfig` and every object the runner creates (pure functions);
- :mod:`.deploy`: what a cluster needs once (``headwater k8s manifests``);
- :mod:`.serving`: :class:`ServingSpec` and the objects serving a pushed model with TF Serving (pure functions);
- :mod:`.rollout`: :class:`Serving` — rollout with a canary, promote, rollback, status
  (``headwater k8s rollout|promote|rollback|status``);
- :mod:`.serving_step`: :func:`RolloutServing` — the pipeline step after Push that rolls the pushed version out.

Importing this package does not import the ``kubernetes`` client; the backend does, when it starts.
"""

from headwater.pipelines.kubernetes._api import load_api_client
from headwater.pipelines.kubernetes.backend import KubernetesBackend
from headwater.pipelines.kubernetes.manifests import KubernetesConfig
from headwater.pipelines.kubernetes.rollout import RolloutOutcome, Serving
from headwater.pipelines.kubernetes.runner import KubernetesRunner
from headwater.pipelines.kubernetes.serving import RolloutError, ServingSpec
from headwater.pipelines.kubernetes.serving_step import RolloutServing, ServingRollout

__all__ = ["KubernetesBackend", "KubernetesConfig", "KubernetesRunner", "RolloutError", "RolloutOutcome",
           "RolloutServing", "Serving", "ServingRollout", "ServingSpec", "load_api_client"]
