"""KubernetesRunner: the generic runner on the Kubernetes backend, with re-attaching to a run's Jobs."""

from __future__ import annotations

from typing import Any, TextIO

from headwater.components.errors import RunnerError
from headwater.metadata.conventions import ExecutionState, NodeState
from headwater.pipelines.kubernetes.backend import KubernetesBackend
from headwater.pipelines.kubernetes.manifests import KubernetesConfig
from headwater.pipelines.launcher import Launcher, Outcome
from headwater.pipelines.runner import NodeResult, Runner, open_store
from headwater.pipelines.status import StatusDisplay

__all__ = ["KubernetesRunner"]


class KubernetesRunner(Runner):
    """Runs each node as a Kubernetes Job; independent nodes concurrently (at most ``max_parallel``).

    Given the ``run_id`` of an earlier run of the same pipeline (constructor or :meth:`run`), it first
    re-attaches to that run's Jobs: those still running are waited for (not started again), those that
    finished meanwhile are published; then the run goes on, reusing what is done.
    """

    def __init__(
        self,
        config: KubernetesConfig | None = None,
        *,
        metadata: str | None = None,
        cache: bool = True,
        quiet: bool = False,
        stream: TextIO | None = None,
        api_client: Any = None,
        run_id: str | None = None,
    ) -> None:
        self.config = config or KubernetesConfig()
        self.default_run_id = run_id
        self._api_client = api_client

        def factory(pipeline: Any = None, selected: Any = None) -> KubernetesBackend:
            backend = self.backend()
            if pipeline is not None:
                try:
                    backend.check_root(pipeline.root)
                except RunnerError:
                    backend.close()
                    raise
            return backend

        super().__init__(factory, metadata=metadata, cache=cache, quiet=quiet, stream=stream)

    def backend(self) -> KubernetesBackend:
        return KubernetesBackend(self.config, api_client=self._api_client, stream=self.stream, quiet=self.quiet)

    def run(self, pipeline: Any, params: Any = None, *, run_id: str | None = None, **kwargs: Any) -> Any:
        run_id = run_id or self.default_run_id
        if run_id is not None:
            self.reattach(pipeline, run_id, params)
        return super().run(pipeline, params, run_id=run_id, **kwargs)

    def reattach(self, pipeline: Any, run_id: str, params: Any = None) -> dict[str, str]:
        """Wait for and publish the executions of ``run_id`` whose Jobs a previous orchestrator started.

        They are handed to the runner's scheduling loop as already in flight. Returns ``{node_id: state}``
        for the executions it re-attached to (empty when there were none)."""
        backend = self.backend()
        try:
            specs = backend.adopt(pipeline.name, run_id)
            if not specs:
                return {}
            store = open_store(pipeline, self.metadata)
            launcher = Launcher(store, pipeline, run_id, pipeline.resolve_params(params), cache=self.cache)
            ids = [s.execution_id for s in specs]
            running = {e.id for e in store.mlmd.get_executions_by_id(ids)
                       if e.last_known_state == ExecutionState.RUNNING}
            keep = [s for s in specs if s.execution_id in running and s.node_id in pipeline.node_ids]
            backend.release([s.execution_id for s in specs if s not in keep])
            if not keep:
                return {}
            nodes = sorted(s.node_id for s in keep)
            display = StatusDisplay(nodes, self.stream, quiet=self.quiet,
                                    title=f"headwater: re-attached to {len(keep)} Job(s) of run {run_id}: "
                                          f"{', '.join(nodes)}")
            adopted = [Outcome(s.node_id, NodeState.LAUNCH, s.execution_id, spec=s, log_path=s.log_path) for s in keep]
            for outcome in adopted:
                display.update(outcome.node_id, "running")
            results: dict[str, NodeResult] = {}
            self._loop(pipeline, [], launcher, backend, display, results, adopted=adopted)
            display.close("headwater: re-attached nodes: " + ", ".join(
                f"{nid} {results[nid].state}" for nid in nodes if nid in results))
            return {nid: result.state for nid, result in results.items()}
        finally:
            backend.close()
