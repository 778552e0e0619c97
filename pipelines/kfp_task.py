"""Compatibility entry point: ``python -m headwater.pipelines.kfp_task`` runs :mod:`headwater.pipelines.kfp.task`.

Pipelines compiled for Kubeflow Pipelines hold this module path in every task's command (and compiled
specs already uploaded to a cluster keep it), so it must keep working; the code lives in
:mod:`headwater.pipelines.kfp.task`. Do not add anything here.
"""

from headwater.pipelines.kfp.task import main, outputs_in_run, run_task

__all__ = ["main", "outputs_in_run", "run_task"]

if __name__ == "__main__":
    raise SystemExit(main())
