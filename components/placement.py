"""Where a node runs: its container image and its placement in a cluster.

::

    train = Train(...).with_image("registry.example/train-gpu:0.4").with_resources(gpu=1, gpu_toleration=True)
    train = train.with_placement(Placement(node_pool="gpu-pool", tolerations=(Toleration("dedicated", "Equal",
                                                                                         "ml", "NoSchedule"),)))

Both are checked when they are given (:func:`check_image`, the dataclasses' own checks) and raise
:class:`~headwater.components.errors.ComponentDefinitionError` naming what is wrong, the rule and the fix.
The local runner ignores them; the Kubernetes runner and the KFP compiler put them into each node's pod.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from headwater.components.errors import ComponentDefinitionError

__all__ = [
    "DEFAULT_NODE_POOL_LABEL",
    "GPU_TOLERATION",
    "Placement",
    "Toleration",
    "check_gpu",
    "check_image",
    "image_problem",
]

#: The node label a ``node_pool`` is matched against (GKE's; EKS: ``eks.amazonaws.com/nodegroup``,
#: AKS: ``kubernetes.azure.com/agentpool``, or any label your pools carry).
DEFAULT_NODE_POOL_LABEL = "cloud.google.com/gke-nodepool"
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_OPERATORS = ("Equal", "Exists")

# The reference grammar of the OCI distribution spec / Docker's reference package:
#   reference := name [ ":" tag ] [ "@" digest ]
#   name      := [domain "/"] path-component ["/" path-component]*   (lowercase path components)
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$"
)
_NAME_MAX = 255
# Label keys and values (Kubernetes): an optional DNS-subdomain prefix, a name of at most 63 characters.
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@contextlib.contextmanager
def at_caller() -> Iterator[None]:
    """Give a ComponentDefinitionError raised inside the file and line of the user's call: the first frame
    outside headwater's components package and contextlib."""
    try:
        yield
    except ComponentDefinitionError as exc:
        here = __file__.rsplit("/", 1)[0] + "/"
        frame: Any = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename.startswith(here) or frame.f_code.co_filename
                                     in (contextlib.__file__, "<string>")):  # "<string>": dataclass __init__
            frame = frame.f_back
        if exc.file is None and frame is not None:
            exc.file, exc.line = frame.f_code.co_filename, frame.f_lineno
            exc.message = f"{exc.message} (at {exc.file}:{exc.line})"
            exc.args = (exc.message,)
        raise


def image_problem(reference: Any) -> str | None:
    """Why ``reference`` cannot be a container image reference (``None`` when it can)."""
    if not isinstance(reference, str) or not reference:
        return f"{reference!r} is not an image reference (a non-empty string such as 'registry.example/app:1.0')"
    if reference != reference.strip() or any(c.isspace() for c in reference):
        return f"image {reference!r} contains whitespace"
    if not _REFERENCE.match(reference):
        lowered = reference.lower()
        hint = f" (repository names are lowercase: {lowered!r})" if _REFERENCE.match(lowered) else ""
        return (f"image {reference!r} is not a valid reference{hint}; the form is "
                "[REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST], e.g. 'registry.example/team/train:0.4'")
    name = reference.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":")[0]
    if len(name) > _NAME_MAX:
        return f"image {reference!r}: the repository name is longer than {_NAME_MAX} characters"
    return None


def check_image(reference: Any, what: str) -> str:
    """``reference`` if it can be an image reference; otherwise ComponentDefinitionError naming ``what``."""
    problem = image_problem(reference)
    if problem:
        raise ComponentDefinitionError(f"{what}: {problem}")
    return str(reference)


def check_gpu(gpu: Any, what: str) -> int:
    """A GPU count: a non-negative integer (``True``/``1.5``/``"1"`` are refused, not guessed at)."""
    if isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0:
        raise ComponentDefinitionError(
            f"{what}: gpu={gpu!r} is not a GPU count; GPUs are whole devices: give a non-negative integer "
            "(e.g. with_resources(gpu=1))"
        )
    return int(gpu)


def _label_key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not key:
        return f"{key!r} is not a label key"
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"label key {key!r}: the prefix {prefix!r} is not a DNS subdomain"
    if len(name) > 63 or not _LABEL_NAME.match(name):
        return (f"label key {key!r}: the name {name!r} must be at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit")
    return None


def _label_value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"label value {value!r} is not a string"
    if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
        return (f"label value {value!r} must be at most 63 letters, digits, '-', '_' or '.', starting and "
                "ending with a letter or digit")
    return None


@dataclass(frozen=True)
class Toleration:
    """A Kubernetes toleration: lets a pod onto nodes with a matching taint.

    ``Toleration("nvidia.com/gpu", "Exists", effect="NoSchedule")`` tolerates GPU nodes' usual taint;
    ``Toleration("dedicated", "Equal", "ml", "NoSchedule")`` a ``dedicated=ml:NoSchedule`` taint.
    """

    key: str | None = None
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None

    def __post_init__(self) -> None:
        with at_caller():
            self._check()

    def _check(self) -> None:
        what = f"Toleration(key={self.key!r})"
        if self.operator not in _OPERATORS:
            raise ComponentDefinitionError(
                f"{what}: operator {self.operator!r} is not one of {', '.join(_OPERATORS)}; use 'Exists' to "
                "tolerate any value of the key, 'Equal' with a value"
            )
        if self.effect is not None and self.effect not in _EFFECTS:
            raise ComponentDefinitionError(
                f"{what}: effect {self.effect!r} is not one of {', '.join(_EFFECTS)} (or None for all effects)"
            )
        if self.operator == "Exists" and self.value:
            raise ComponentDefinitionError(
                f"{what}: operator 'Exists' takes no value (got {self.value!r}); use operator='Equal' to match it"
            )
        if not self.key and self.operator != "Exists":
            raise ComponentDefinitionError(f"{what}: a toleration without a key must use operator='Exists' "
                                           "(it then tolerates every taint)")
        if self.key:
            problem = _label_key_problem(self.key)
            if problem:
                raise ComponentDefinitionError(f"{what}: {problem}")
        if self.toleration_seconds is not None:
            if self.effect != "NoExecute":
                raise ComponentDefinitionError(
                    f"{what}: toleration_seconds applies only to effect='NoExecute' (got effect={self.effect!r})")
            if isinstance(self.toleration_seconds, bool) or not isinstance(self.toleration_seconds, int):
                raise ComponentDefinitionError(f"{what}: toleration_seconds must be an integer number of seconds")

    def to_manifest(self) -> dict[str, Any]:
        """The toleration as a pod spec holds it (``tolerationSeconds`` and empty fields left out)."""
        out: dict[str, Any] = {}
        if self.key:
            out["key"] = self.key
        out["operator"] = self.operator
        if self.value:
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = int(self.toleration_seconds)
        return out


#: The toleration of the taint GPU node pools usually carry (GKE and the NVIDIA operator set it).
GPU_TOLERATION = Toleration("nvidia.com/gpu", "Exists", effect="NoSchedule")


@dataclass(frozen=True)
class Placement:
    """Where a node's pod may run, on Kubernetes and under KFP.

    ``node_selector``: node labels the pod's node must carry; ``tolerations``: taints it may run on;
    ``node_pool``: a required node affinity to the nodes whose ``node_pool_label`` is this pool;
    ``service_account``: the pod's ServiceAccount (e.g. one with cloud credentials for Push);
    ``api_access``: mount that account's token so the node can call the Kubernetes API (``RolloutServing``;
    its Role decides what it may do; headwater's pods get no token otherwise). The local runner ignores all
    of it; KFP cannot express ``api_access`` (its pods' token follows the cluster's defaults).
    """

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    node_pool: str | None = None
    node_pool_label: str = DEFAULT_NODE_POOL_LABEL
    service_account: str | None = None
    api_access: bool = False

    def __post_init__(self) -> None:
        with at_caller():
            self._check()

    def _check(self) -> None:
        what = "Placement"
        object.__setattr__(self, "node_selector", dict(self.node_selector))
        if isinstance(self.tolerations, Toleration):
            object.__setattr__(self, "tolerations", (self.tolerations,))
        object.__setattr__(self, "tolerations", tuple(self.tolerations))
        for key, value in self.node_selector.items():
            problem = _label_key_problem(key) or _label_value_problem(value)
            if problem:
                raise ComponentDefinitionError(f"{what}: node_selector: {problem}")
        for tol in self.tolerations:
            if not isinstance(tol, Toleration):
                raise ComponentDefinitionError(
                    f"{what}: tolerations take Toleration(...) objects, not {tol!r} "
                    "(e.g. Toleration('dedicated', 'Equal', 'ml', 'NoSchedule'))")
        if self.node_pool is not None:
            problem = _label_value_problem(self.node_pool) if self.node_pool else "node_pool is empty"
            problem = problem or _label_key_problem(self.node_pool_label)
            if problem:
                raise ComponentDefinitionError(f"{what}: {problem}")
        if self.service_account is not None and not (
                self.service_account and len(self.service_account) <= 253
                and _DNS_SUBDOMAIN.match(self.service_account)):
            raise ComponentDefinitionError(
                f"{what}: service_account {self.service_account!r} is not a ServiceAccount name (lowercase "
                "letters, digits, '-' and '.')")
        if not isinstance(self.api_access, bool):
            raise ComponentDefinitionError(f"{what}: api_access is {self.api_access!r}; give True or False")

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.node_selector.items())), self.tolerations, self.node_pool,
                     self.node_pool_label, self.service_account, self.api_access))

    def merged(self, other: Placement | None) -> Placement:
        """This placement with ``other``'s settings on top (selectors merged, tolerations added)."""
        if other is None:
            return self
        tolerations = self.tolerations + tuple(t for t in other.tolerations if t not in self.tolerations)
        return Placement(
            {**self.node_selector, **other.node_selector}, tolerations,
            other.node_pool if other.node_pool is not None else self.node_pool,
            other.node_pool_label if other.node_pool is not None else self.node_pool_label,
            other.service_account or self.service_account,
            other.api_access or self.api_access,
        )

    def node_affinity(self) -> dict[str, Any] | None:
        """The pod's ``affinity`` for ``node_pool`` (required at scheduling), or None."""
        if not self.node_pool:
            return None
        term = {"matchExpressions": [{"key": self.node_pool_label, "operator": "In", "values": [self.node_pool]}]}
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
