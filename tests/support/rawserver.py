"""Misbehaving HTTP servers on loopback: each mode breaks the exchange in one way.

``misbehaving_server(mode)`` reads the request first (so the provider has it) and then
misbehaves, except ``reset_unread``, which resets the connection without reading;
``unaccepting_port`` is a port whose listener accepts no connection at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)


MODES = ("close_before_reply", "hang", "partial_headers", "partial_body", "garbage", "reset",
         "reset_unread", "huge_headers")


def _reset(writer: asyncio.StreamWriter) -> None:
    """Make the coming close a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@contextlib.asynccontextmanager
async def misbehaving_server(
    mode: str, on_accept: Callable[[], None] | None = None
) -> AsyncIterator[str]:
    """Serve ``mode`` on 127.0.0.1; yields the base URL. The request is read first, except
    by ``reset_unread``; ``on_accept`` is called for every connection the server accepts."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if on_accept is not None:
            on_accept()
        try:
            if mode == "reset_unread":  # at once, before reading a byte of the request
                _reset(writer)
                return
            await _read_request(reader)
            if mode == "hang":
                await reader.read()  # until the client gives up and closes
            elif mode == "partial_headers":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                await writer.drain()
            elif mode == "partial_body":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"id\":")
                await writer.drain()
            elif mode == "garbage":
                writer.write(b"NOT HTTP AT ALL\r\n\r\n")
                await writer.drain()
            elif mode == "reset":
                _reset(writer)
            elif mode == "huge_headers":  # one header line beyond any client's limit
                writer.write(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 65536 + b"\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)


@contextlib.contextmanager
def unaccepting_port() -> Iterator[int]:
    """A loopback port whose listener never accepts and whose backlog is full: a connect
    to it hangs until the client's connect timeout (Linux drops the SYN)."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
