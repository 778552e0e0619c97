"""Kubeflow Pipelines: compile a pipeline into a KFP v2 pipeline spec (:mod:`.compile`), and the entry point
every compiled task runs (:mod:`.task`, started as ``python -m headwater.pipelines.kfp_task``)."""

from headwater.pipelines.kfp.compile import KfpOptions, KfpPackage, compile_kfp, compile_kfp_package

__all__ = ["KfpOptions", "KfpPackage", "compile_kfp", "compile_kfp_package"]
