"""A local Kubernetes API stand-in for tests: HTTP server + Job controller + scheduler + subprocess kubelet.

Driven by the official ``kubernetes`` client like a real cluster. See ``server.py`` for the REST surface,
``cluster.py`` for what the controllers and the kubelet do, and ``faults.py`` for injectable faults.
"""

from .cluster import Image, Node
from .faults import ApiFault, PodFault
from .server import ApiStandIn, RequestRecord, parse_go_bool

__all__ = ["ApiFault", "ApiStandIn", "Image", "Node", "PodFault", "RequestRecord", "parse_go_bool"]
