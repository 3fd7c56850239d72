"""A threaded HTTP server for the simulator on 127.0.0.1, able to close a connection without answering."""

from __future__ import annotations

import socketserver
import sys
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from .model import DropConnection


class _Handler(ServerHandler):
    """wsgiref's handler, one request per connection, and `DropConnection` answered with silence."""

    http_version = "1.1"

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        self.headers["Connection"] = "close"

    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], DropConnection):
            return  # nothing written: the client sees the connection close with no answer
        super().handle_error()


class _RequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet request logging
        pass

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _Handler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def server_bind(self) -> None:
        # Skips HTTPServer's reverse-DNS lookup of the bind address (slow without a resolver).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()


class SimulatorServer:
    """A simulator served on a background thread: `.url`, `.port`, `.sim`, `.stop()`; a context manager."""

    def __init__(self, sim: Callable[..., Any], host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim: Any = sim
        self._server = _Server((host, port), _RequestHandler)
        self._server.set_app(sim)
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="jira-simulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SimulatorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
