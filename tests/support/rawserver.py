"""A misbehaving HTTP server on loopback: each mode breaks the exchange in one way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)


MODES = ("close_before_reply", "hang", "partial_headers", "partial_body", "garbage", "reset")


@contextlib.asynccontextmanager
async def misbehaving_server(mode: str) -> AsyncIterator[str]:
    """Serve ``mode`` on 127.0.0.1; yields the base URL. The request is always read first."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
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
                sock = writer.get_extra_info("socket")
                import socket
                import struct

                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
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
