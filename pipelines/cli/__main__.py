"""``python -m headwater.pipelines.cli``: the ``headwater`` command (the orchestrator Job of ``--detach``
runs it this way)."""

from headwater.pipelines.cli import main

raise SystemExit(main())
