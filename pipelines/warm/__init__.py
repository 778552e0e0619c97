"""Warm workers that outlive a run: one daemon per user and Python environment keeps worker processes.

``LocalRunner`` (and ``headwater run``) use it unless ``keep_warm=False`` / ``--no-keep-warm`` /
``HEADWATER_KEEP_WARM=0``; it is the local backend's source of workers, not another runner. See
docs/architecture.md ("Warm workers") for the design: socket, keys, isolation, recycling.
"""

from headwater.pipelines.warm._client import (
    DEFAULT_IDLE_SECONDS,
    KEEP_WARM_ENV,
    WarmPool,
    WarmSlot,
    keep_warm_seconds,
    query,
    stop_pool,
    warm_pool,
)
from headwater.pipelines.warm._paths import DIR_ENV, WarmPoolError, base_dir, pool_dirs

__all__ = [
    "DEFAULT_IDLE_SECONDS",
    "DIR_ENV",
    "KEEP_WARM_ENV",
    "WarmPool",
    "WarmPoolError",
    "WarmSlot",
    "base_dir",
    "keep_warm_seconds",
    "pool_dirs",
    "query",
    "stop_pool",
    "warm_pool",
]
