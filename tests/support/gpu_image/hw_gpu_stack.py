"""Stands for a library only the GPU image has installed (on that image's PYTHONPATH in the stand-in)."""


def device() -> str:
    return "gpu-stack"
