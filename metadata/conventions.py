"""Every name headwater writes to or reads from ML Metadata, in one place.

Execution custom properties headwater adds next to a node's parameters start and end with ``__``
(parameter names cannot start with ``_``, so they never clash)::

    P_NODE            __node_id__           the pipeline node that ran
    P_RUN             __run_id__            the run (also the ``pipeline_run`` context's name)
    P_OWNER           __owner__             host:pid:start of the orchestrator (crash recovery)
    P_CACHE_KEY       __cache_key__         the cache key (also the ``execution_cache`` context's name)
    P_CODE            __code_fingerprint__  component source + code parameters
    P_CODE_FALLBACK   __code_fingerprint_fallback__  why a code fingerprint covers a whole folder
    P_LOG             __log_path__          the node's log file
    P_DURATION        __duration_s__        seconds the node took
    P_PEAK_RSS        __peak_rss_mib__      peak resident memory of the execution, MiB: the worker's own (its
                                            high-water mark, reset for the execution) + the processes it started
    P_PEAK_RSS_CHILDREN __peak_rss_children_mib__  … of which the processes it started (Beam workers, servers)
    P_ATTEMPTS        __attempts__          how many attempts ran
    P_CACHED_FROM     __cached_from__       on CACHED executions: the execution reused
    P_SKIPPED         __skipped__           why a ``skip_if`` hook skipped the executor
    P_RESOLVER_INPUTS __resolver_inputs__   a resolver's inputs (kept as a property, not INPUT events)
    P_ERROR           __error__             on FAILED / CANCELED executions: the message
    P_ERROR_TYPE      __error_type__        … the exception's class name
    P_TRACEBACK       __traceback__         … the user's traceback
    P_USER_ERROR      __user_error__        … whether the failure was in user code

Context types (TFX's names, so TFX tools read headwater stores): ``pipeline`` (named by the pipeline),
``pipeline_run`` (the run id), ``node`` (``<pipeline>.<node id>``), ``execution_cache`` (the cache key).
The run context's custom properties are the ``RUN_*`` keys and ``param:<name>`` per runtime parameter.
Artifact custom properties with a meaning across components (a blessing's verdict, a push's destination)
are the ``A_*`` names, TFX's own.

States are enums: :class:`ExecutionState` holds MLMD's numbers; :class:`RunStatus` is what the run
context records and ``runs list`` prints; :class:`NodeState` is what runners report for each node.
"""

from __future__ import annotations

import enum

__all__ = [
    "A_BASELINE_METRICS",
    "A_BASELINE_MODEL",
    "A_BASELINE_MODEL_ID",
    "A_BLESSED",
    "A_BLESSING_MESSAGE",
    "A_CURRENT_MODEL",
    "A_CURRENT_MODEL_ID",
    "A_METRICS",
    "A_PUSHED",
    "A_PUSHED_DESTINATION",
    "A_PUSHED_VERSION",
    "A_PUSH_SKIPPED",
    "A_ROLLOUT_MESSAGE",
    "CONTEXT_CACHE",
    "CONTEXT_EXPERIMENT",
    "CONTEXT_NODE",
    "CONTEXT_PIPELINE",
    "CONTEXT_RUN",
    "EVENT_INPUT",
    "EVENT_INTERNAL_OUTPUT",
    "EVENT_OUTPUT",
    "EXECUTION_PROPERTIES",
    "OUTPUT_EVENTS",
    "PARAM_PREFIX",
    "P_ATTEMPTS",
    "P_CACHED_FROM",
    "P_CACHE_KEY",
    "P_CODE",
    "P_CODE_FALLBACK",
    "P_DURATION",
    "P_ERROR",
    "P_ERROR_TYPE",
    "P_KFP_RUN_NAME",
    "P_LOG",
    "P_NODE",
    "P_OWNER",
    "P_PEAK_RSS",
    "P_PEAK_RSS_CHILDREN",
    "P_RESOLVER_INPUTS",
    "P_RUN",
    "P_SKIPPED",
    "P_TRACEBACK",
    "P_USER_ERROR",
    "RUN_EXPERIMENT",
    "RUN_FINISHED",
    "RUN_GRAPH",
    "RUN_NODES",
    "RUN_NODE_NOTES",
    "RUN_OWNER",
    "RUN_PIPELINE_NAME",
    "RUN_PIPELINE_ROOT",
    "RUN_STARTED",
    "RUN_STATUS",
    "TFX_STRUCT_VALUE",
    "TYPE_SERVING_ROLLOUT",
    "ExecutionState",
    "NodeState",
    "RunStatus",
    "node_context_name",
    "param_key",
]

# ---------------------------------------------------------------- context types
CONTEXT_PIPELINE = "pipeline"
CONTEXT_RUN = "pipeline_run"
CONTEXT_NODE = "node"
CONTEXT_CACHE = "execution_cache"
#: Groups runs (``headwater run --experiment NAME``; default: the pipeline's name); a parent of each run context.
CONTEXT_EXPERIMENT = "experiment"

# ---------------------------------------------------------------- event kinds
EVENT_INPUT = "INPUT"
EVENT_OUTPUT = "OUTPUT"
EVENT_INTERNAL_OUTPUT = "INTERNAL_OUTPUT"
#: Event kinds that make an artifact an execution's output; a resolver's picks are INTERNAL_OUTPUT (as in
#: TFX), so lineage does not run through the resolver to what it happened to be given.
OUTPUT_EVENTS = (EVENT_OUTPUT, EVENT_INTERNAL_OUTPUT)

# ---------------------------------------------------------------- execution custom properties
P_NODE = "__node_id__"
P_RUN = "__run_id__"
P_OWNER = "__owner__"
P_CACHE_KEY = "__cache_key__"
P_CODE = "__code_fingerprint__"
P_CODE_FALLBACK = "__code_fingerprint_fallback__"
P_LOG = "__log_path__"
P_DURATION = "__duration_s__"
P_PEAK_RSS = "__peak_rss_mib__"
P_PEAK_RSS_CHILDREN = "__peak_rss_children_mib__"
P_ATTEMPTS = "__attempts__"
P_CACHED_FROM = "__cached_from__"
P_SKIPPED = "__skipped__"
P_RESOLVER_INPUTS = "__resolver_inputs__"
P_ERROR = "__error__"
P_ERROR_TYPE = "__error_type__"
P_TRACEBACK = "__traceback__"
P_USER_ERROR = "__user_error__"

#: Every execution property headwater writes (the names a parameter can never take).
EXECUTION_PROPERTIES = frozenset({
    P_NODE, P_RUN, P_OWNER, P_CACHE_KEY, P_CODE, P_CODE_FALLBACK, P_LOG, P_DURATION, P_PEAK_RSS,
    P_PEAK_RSS_CHILDREN, P_ATTEMPTS, P_CACHED_FROM, P_SKIPPED, P_RESOLVER_INPUTS, P_ERROR, P_ERROR_TYPE, P_TRACEBACK,
    P_USER_ERROR,
})

# ---------------------------------------------------------------- run context custom properties
RUN_PIPELINE_NAME = "pipeline_name"
RUN_PIPELINE_ROOT = "pipeline_root"
RUN_OWNER = "owner"
RUN_STARTED = "started_s"
RUN_FINISHED = "finished_s"
RUN_STATUS = "status"
#: The pipeline's node graph at run start, JSON ``{"nodes": [...], "edges": [...]}`` (see pipelines/run_graph.py).
RUN_GRAPH = "pipeline_graph"
#: The experiment the run belongs to (the name of its ``experiment`` context).
RUN_EXPERIMENT = "experiment"
#: The pipeline's node ids in order (a JSON list), recorded when the run starts: ``runs show`` lists every node.
RUN_NODES = "node_ids"
#: Nodes that ran no execution (blocked, canceled before starting, not selected), recorded when the run ends:
#: a JSON object ``{node id: {"state": …, "reason": …}}``.
RUN_NODE_NOTES = "node_notes"
#: Under KFP: the KFP run's name, recorded on the run context by the first task.
P_KFP_RUN_NAME = "kfp_run_name"
PARAM_PREFIX = "param:"

# ---------------------------------------------------------------- artifact custom properties (TFX's names)
#: ModelBlessing (written by Evaluate, read by Push, resolvers, the KFP gate and lineage)
A_BLESSED = "blessed"
A_BLESSING_MESSAGE = "blessing_message"
A_CURRENT_MODEL = "current_model"
A_CURRENT_MODEL_ID = "current_model_id"
A_BASELINE_MODEL = "baseline_model"
A_BASELINE_MODEL_ID = "baseline_model_id"
#: PushedModel (written by Push, read by lineage)
A_PUSHED = "pushed"
A_PUSHED_DESTINATION = "pushed_destination"
A_PUSHED_VERSION = "pushed_version"
#: PushedModel of a skipped Push: why it was not pushed
A_PUSH_SKIPPED = "push_skipped"
#: ServingRollout (written by the RolloutServing step, read by the run's outcome): what the rollout did
TYPE_SERVING_ROLLOUT = "ServingRollout"
A_ROLLOUT_MESSAGE = "rollout_message"
#: ModelEvaluation (written by Evaluate): the Overall slice's metrics of the candidate and of the baseline
A_METRICS = "metrics"
A_BASELINE_METRICS = "baseline_metrics"

# ---------------------------------------------------------------- values written by TFX that we read
#: TFX stores a JSON custom property as a Struct ``{"__value__": "<json>"}`` (behind ``mlmd-struct::``).
TFX_STRUCT_VALUE = "__value__"


def param_key(name: str) -> str:
    """The run context key holding runtime parameter ``name``'s value."""
    return f"{PARAM_PREFIX}{name}"


def node_context_name(pipeline: str, node_id: str) -> str:
    """The ``node`` context's name for ``node_id`` of ``pipeline``."""
    return f"{pipeline}.{node_id}"


# ---------------------------------------------------------------- states
class ExecutionState(enum.IntEnum):
    """MLMD execution states (the numbers of ``metadata_store_pb2.Execution.State``)."""

    UNKNOWN = 0
    NEW = 1
    RUNNING = 2
    COMPLETE = 3
    FAILED = 4
    CACHED = 5
    CANCELED = 6

    # Not members: the state names by number, and the states that count as a success.
    NAMES = enum.nonmember(("UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED"))
    SUCCESS = enum.nonmember((3, 5))


class RunStatus(enum.StrEnum):
    """A run's status: recorded on the run context (``status``) and printed by ``runs list``."""

    RUNNING = "running"
    EMPTY = "empty"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class NodeState(enum.StrEnum):
    """What happened to a node in a run, as runners, the console status and ``RunResult`` report it."""

    QUEUED = "queued"
    LAUNCH = "launch"  # prepared: the backend is to run it
    RUNNING = "running"
    DONE = "done"
    CACHED = "cached"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELED = "canceled"
    BLOCKED = "blocked"
    NOT_RUN = "not_run"
