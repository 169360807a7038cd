"""A small OpenAI-compatible HTTP server, a real one on loopback, standing in
for a third-party upstream (vLLM, Ollama) in tests: it can answer, fail with
500, or hang past the client's timeout."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UPSTREAM_TEXT = "Upstream says hello"


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a hanging answer is expected here


class UpstreamServer:
    def __init__(self, mode: str = "ok", api_key: str = "upstream-secret") -> None:
        self.mode = mode
        self.api_key = api_key
        self.seen_auth: list[str | None] = []
        self.chat_calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                server.seen_auth.append(self.headers.get("Authorization"))
                if server.mode == "down":
                    self._reply(500, b'{"error": {"message": "boom"}}')
                    return
                self._reply(200, json.dumps({"object": "list", "data": [{"id": "up-model"}]}).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                server.seen_auth.append(self.headers.get("Authorization"))
                server.chat_calls += 1
                if server.mode == "error":
                    self._reply(500, b'{"error": {"message": "upstream broke"}}')
                    return
                if server.mode == "hang":
                    time.sleep(2)
                    self._reply(200, b"{}")
                    return
                usage = {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}
                if not body.get("stream"):
                    completion = {
                        "id": "up-1",
                        "object": "chat.completion",
                        "created": 1,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": UPSTREAM_TEXT},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    }
                    self._reply(200, json.dumps(completion).encode())
                    return
                events: list[dict[str, Any]] = []
                for piece in ["Upstream", " says", " hello"]:
                    events.append(
                        {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    )
                events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                events.append({"choices": [], "usage": usage})
                payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                self._reply(200, payload.encode(), "text/event-stream")

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> UpstreamServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
