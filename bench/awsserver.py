"""An HTTP front for the in-process moto of an `Emulator`, for the cold-start probes.

A cold-start probe is a fresh interpreter that must import nothing but the handler, so
it cannot run moto itself. It reaches AWS through `AWS_ENDPOINT_URL` instead: this server
takes each signed request, restores the real AWS host from the SigV4 credential scope,
and hands it to moto's own request router (the one `mock_aws` hooks into botocore), so
the probe's first call pays what it would in Lambda: client creation, service-model
loading, signing, an HTTP round trip. moto's answer time stands in for AWS's latency.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders
from moto.core.models import botocore_stubber

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
_GLOBAL_HOSTS = {"iam": "iam.amazonaws.com", "s3": "s3.amazonaws.com"}


def aws_host(authorization: str) -> tuple[str, str]:
    """(signing service, host AWS would have been called on), from the signing scope."""
    match = _SCOPE.search(authorization)
    if match is None:
        raise ValueError("request is not SigV4-signed")
    service, region = match["service"], match["region"]
    return service, _GLOBAL_HOSTS.get(service, f"{service}.{region}.amazonaws.com")


def _operation(service: str, headers: Any, body: bytes) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    action = parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
    return f"{service}:{action}"


@dataclass
class Observed:
    """The operations the probes sent, so each probe's first call can be described."""

    operations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> list[str]:
        with self.lock:
            taken, self.operations = self.operations, []
        return taken


def _handler_class(observed: Observed) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore uses it against AWS

        def log_message(self, format: str, *args: Any) -> None:
            return

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = HTTPHeaders()
            for key, value in self.headers.items():
                headers[key] = value
            try:
                service, host = aws_host(self.headers.get("Authorization", ""))
            except ValueError as exc:
                self.reply(400, {}, str(exc).encode())
                return
            with observed.lock:
                observed.operations.append(_operation(service, self.headers, body))
            request = AWSPreparedRequest(
                method=self.command, url=f"https://{host}{self.path}", headers=headers, body=body, stream_output=False
            )
            answer = botocore_stubber.process_request(request)
            if answer is None:
                self.reply(404, {}, b"not emulated")
                return
            status, reply_headers, reply_body = answer
            self.reply(status, reply_headers, reply_body)

        def reply(self, status: int, headers: dict[str, Any], body: str | bytes | None) -> None:
            payload = body.encode() if isinstance(body, str) else (body or b"")
            self.send_response(int(status))
            for key, value in (headers or {}).items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(key, str(value))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = forward

    return Handler


@contextmanager
def serving() -> Iterator[tuple[str, Observed]]:
    """Serve the current moto state on a free local port: (endpoint URL, observed calls).

    Call inside an active `mock_aws` (an `Emulator`): moto's router answers only then.
    """
    observed = Observed()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(observed))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="bench-aws-endpoint", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", observed
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
