"""API Gateway's part, offline: HTTP requests in, proxy events to the Chalice app.

Requests become the same proxy events API Gateway sends a Lambda (Chalice's
own event converter builds them), so the app runs exactly as it would behind
API Gateway. `/dashboard/` serves `frontend_static/` from the same origin.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from chalice.app import Chalice
from chalice.local import LambdaContext, LambdaEventConverter, LocalChalice, RouteMatcher

from chalicelib.errors import UnknownUrl, error_body

log = logging.getLogger(__name__)

DASHBOARD_PREFIX = "/dashboard/"


def _not_found_body(method: str, path: str) -> bytes:
    return json.dumps(UnknownUrl(method, path).body()).encode()


class ApiGatewayEmulator:
    """Turns (method, path, headers, body) into a Lambda proxy invocation."""

    def __init__(self, app: Chalice, function_timeout_s: int = 30) -> None:
        # Lambda runs one request per process; here threads share one app, so
        # its current_request must be thread-local (as `chalice local` does).
        if not isinstance(app, LocalChalice):
            app.__class__ = type("ThreadLocalChalice", (LocalChalice, app.__class__), {})
        self.app = app
        self._converter = LambdaEventConverter(RouteMatcher(list(app.routes)), app.api.binary_types)
        self._timeout_ms = function_timeout_s * 1000

    def invoke(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            event = self._converter.create_lambda_event(method=method, path=path, headers=headers, body=body)
        except ValueError:
            return 404, {"Content-Type": "application/json"}, _not_found_body(method, path)
        event["requestContext"]["requestId"] = str(uuid.uuid4())
        # API Gateway hands path parameters to the Lambda percent-decoded.
        if event.get("pathParameters"):
            event["pathParameters"] = {k: unquote(v) for k, v in event["pathParameters"].items()}
        context = LambdaContext("api_handler", 512, self._timeout_ms)
        response: dict[str, Any] = self.app(event, context)
        return self._decode(response)

    @staticmethod
    def _decode(response: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        raw = response.get("body") or b""
        if response.get("isBase64Encoded"):
            import base64

            raw = base64.b64decode(raw)
        elif isinstance(raw, str):
            raw = raw.encode()
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ",".join(values)
        return int(response["statusCode"]), headers, raw


def make_handler(gateway: ApiGatewayEmulator, dashboard_dir: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY the body
        # waits ~40 ms for the client's delayed ACK (docs/PERFORMANCE.md 1.2).
        disable_nagle_algorithm = True
        server_version = "gpucloud-local"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # http.server answers malformed requests and unknown methods itself, in HTML; API Gateway
            # would not reach the app either, but a client here still gets OpenAI's error shape.
            reason = message or self.responses.get(code, ("Bad request",))[0]
            body = error_body(f"{reason}.", "server_error" if code >= 500 else "invalid_request_error")
            self.close_connection = True
            self._send(code, {"Content-Type": "application/json"}, json.dumps(body).encode())

        def _handle(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self.send_error(400, "Content-Length must be a number of bytes")
                return
            body = self.rfile.read(length) if length else None
            path = urlsplit(self.path).path
            if self.command == "GET" and (path == "/dashboard" or path.startswith(DASHBOARD_PREFIX)):
                self._serve_static(path)
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out_headers, payload = gateway.invoke(self.command, self.path, headers, body)
            self._send(status, out_headers, payload)

        def _serve_static(self, path: str) -> None:
            relative = path[len(DASHBOARD_PREFIX) :] if path.startswith(DASHBOARD_PREFIX) else ""
            target = (dashboard_dir / (relative or "index.html")).resolve()
            if dashboard_dir.resolve() not in target.parents or not target.is_file():
                self._send(404, {"Content-Type": "text/plain"}, b"not found")
                return
            content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if target.suffix == ".js":
                content_type = "text/javascript"
            self._send(200, {"Content-Type": content_type, "Cache-Control": "no-cache"}, target.read_bytes())

        def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in {"content-length", "connection"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                log.info("client went away before its answer was sent")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    return Handler


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many SDK clients at once: the default backlog of 5 refuses connections.
    request_queue_size = 256


def serve(app: Chalice, host: str, port: int, dashboard_dir: Path) -> GatewayServer:
    return GatewayServer((host, port), make_handler(ApiGatewayEmulator(app), dashboard_dir))
