"""Running the API under uvicorn: standalone (``serve``), inside the daemon, or in a thread.

Inside the daemon the scheduler owns SIGTERM/SIGINT, so the embedded server installs no
signal handlers of its own; the daemon stops it with ``should_exit = True``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Generator
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI


def uvicorn_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings: our logging, no lifespan, no websockets, no server banner."""
    return uvicorn.Config(
        app, host=host, port=port, log_config=None, lifespan="off", ws="none",
        http="h11", server_header=False, proxy_headers=False, access_log=True,
        timeout_graceful_shutdown=10,
    )


class EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signal handling to its host (the daemon or a test)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install nothing: the host stops us with ``should_exit``."""
        yield


def embedded_server(app: FastAPI, host: str, port: int) -> EmbeddedServer:
    """A server to ``await server.serve()`` beside the scheduler on the daemon's loop."""
    return EmbeddedServer(uvicorn_config(app, host, port))


class ThreadedServer:
    """The API on a loopback port in a background thread (tests, demos)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.server = EmbeddedServer(uvicorn_config(app, self.host, self.port))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]},
                                        name="watchdog-api", daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Serve; return once the socket accepts requests."""
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the API server thread exited during startup")
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        """Finish in-flight requests and join the thread."""
        self.server.should_exit = True
        self._thread.join(15)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
