"""Faults a test can inject into the stand-in: pod-level (what the kubelet does) and API-level (answers)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ApiFault", "PodFault"]


@dataclass
class PodFault:
    """What happens to the next ``times`` pods whose labels include ``labels`` (``times=None``: all).

    kinds:
      - ``exit``: the container exits with ``exit_code`` at start, before running its command;
      - ``oom``: the container is killed ``after`` seconds into its run and reported ``OOMKilled`` (137);
      - ``image_pull``: the image cannot be pulled (``ErrImagePull`` then ``ImagePullBackOff``);
      - ``evict``: the pod is evicted ``after`` seconds into its run (phase Failed, reason ``Evicted``);
      - ``slow_start``: the container starts ``after`` seconds late (stays ``ContainerCreating``).
    """

    kind: str
    labels: Mapping[str, str] = field(default_factory=dict)
    times: int | None = 1
    exit_code: int = 1
    after: float = 0.0
    used: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("exit", "oom", "image_pull", "evict", "slow_start"):
            raise ValueError(f"unknown pod fault kind {self.kind!r}")

    @classmethod
    def exit(cls, code: int = 1, *, times: int | None = 1, labels: Mapping[str, str] | None = None) -> PodFault:
        return cls("exit", dict(labels or {}), times, exit_code=code)

    @classmethod
    def oom(cls, *, after: float = 0.0, times: int | None = 1, labels: Mapping[str, str] | None = None) -> PodFault:
        return cls("oom", dict(labels or {}), times, after=after)

    @classmethod
    def image_pull(cls, *, times: int | None = None, labels: Mapping[str, str] | None = None) -> PodFault:
        return cls("image_pull", dict(labels or {}), times)

    @classmethod
    def evict(cls, *, after: float = 0.0, times: int | None = 1, labels: Mapping[str, str] | None = None) -> PodFault:
        return cls("evict", dict(labels or {}), times, after=after)

    @classmethod
    def slow_start(cls, seconds: float, *, times: int | None = None,
                   labels: Mapping[str, str] | None = None) -> PodFault:
        return cls("slow_start", dict(labels or {}), times, after=seconds)

    def take(self, pod_labels: Mapping[str, str]) -> bool:
        """Whether this fault applies to a pod with ``pod_labels`` (and count it)."""
        if any(pod_labels.get(k) != v for k, v in self.labels.items()):
            return False
        if self.times is not None and self.used >= self.times:
            return False
        self.used += 1
        return True



@dataclass
class ApiFault:
    """Answer the next ``times`` requests matching (verb, resource[, name]) with ``code``.

    ``verb`` is the RBAC verb (create, get, list, watch, delete, deletecollection); ``resource`` the plural
    resource (``jobs``, ``pods``, ``pods/log``, ``configmaps``). A 429 carries ``Retry-After``.
    ``after_commit``: carry the request out, then answer the error (a create whose answer was lost).
    """

    verb: str
    resource: str
    code: int
    times: int = 1
    name: str | None = None
    retry_after: int = 1
    after_commit: bool = False
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, verb: str, resource: str, name: str | None, after_commit: bool = False) -> bool:
        with self._lock:
            if verb != self.verb or resource != self.resource or after_commit != self.after_commit:
                return False
            if self.name is not None and name != self.name:
                return False
            if self.used >= self.times:
                return False
            self.used += 1
            return True
