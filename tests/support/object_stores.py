"""Real object-store protocol servers on loopback, for the tests and the object-store benchmark.

moto's S3 server (the S3 REST API) and gcp-storage-emulator (the GCS JSON API). headwater reaches them
exactly as it reaches AWS or GCS, told only by the standard variables ``AWS_ENDPOINT_URL`` /
``STORAGE_EMULATOR_HOST`` (see :func:`object_store_env`), which spawned workers and pods inherit.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import urllib.request
from collections.abc import Callable

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "headwater-test",
    "AWS_SECRET_ACCESS_KEY": "headwater-test-secret",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_s3_server() -> tuple[str, Callable[[], None]]:
    """Start a moto S3 server in a thread: (endpoint URL, stop)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server.stop


def start_gcs_server() -> tuple[str, Callable[[], None]]:
    """Start an in-memory GCS emulator in a thread: (endpoint URL, stop)."""
    from gcp_storage_emulator import server as emulator

    class Handler(emulator.RequestHandler):
        """Answers ``Expect: 100-continue`` (sent with every upload), which the emulator leaves unanswered,
        so that the client does not wait a second for it on each write."""

        def parse_request(self) -> bool:
            ok = bool(super().parse_request())
            if ok and self.headers.get("Expect", "").lower() == "100-continue":
                ok = bool(self.handle_expect_100())
            return ok

    logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
    original, emulator.RequestHandler = emulator.RequestHandler, Handler  # what the server thread instantiates
    port = free_port()
    server = emulator.create_server("127.0.0.1", port, in_memory=True)
    server.start()

    def stop() -> None:
        server.stop()
        emulator.RequestHandler = original

    return f"http://127.0.0.1:{port}", stop


def object_store_env(kind: str, endpoint: str) -> dict[str, str]:
    """The environment that points headwater (and its workers and pods) at a test object store."""
    if kind == "s3":
        return {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
    return {"STORAGE_EMULATOR_HOST": endpoint}


def make_bucket(kind: str, endpoint: str, prefix: str = "hw") -> str:
    """Create a fresh bucket on the ``kind`` ("s3" or "gs") server; returns its name."""
    bucket = f"{prefix}-{secrets.token_hex(4)}"
    if kind == "s3":
        import boto3

        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
                     region_name=S3_ENV["AWS_REGION"]).create_bucket(Bucket=bucket)
    else:
        req = urllib.request.Request(f"{endpoint}/storage/v1/b?project=test", method="POST",
                                     data=json.dumps({"name": bucket}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
    return bucket
