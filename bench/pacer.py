"""A lean HTTP/1.1 keep-alive client for paced writes: httpx costs the harness about a
millisecond of CPU per request, too much to hold 200 changes/s on a shared core."""

import asyncio
import contextlib
import json


def raw_post(path: str, headers: dict[str, str], body: dict[str, str]) -> bytes:
    """A complete POST request, encoded once and sent as often as needed."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Content-Length: {len(payload)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class KeepAliveClient:
    """A fixed set of keep-alive connections; a request waits for an idle one, so the
    connections also bound how many requests are in flight."""

    def __init__(self, host: str, port: int, connections: int) -> None:
        self.host = host
        self.port = port
        self.size = connections
        self._idle: asyncio.Queue[Connection] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self._idle.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def idle_connection(self) -> Connection:
        return await self._idle.get()

    async def send(self, connection: Connection, request: bytes) -> int:
        """Send one request on a connection taken with ``idle_connection``; its status, or
        0 when the exchange failed. The connection goes back to the idle set either way."""
        reader, writer = connection
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            self._idle.put_nowait(connection)
            return status
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            writer.close()
            self._idle.put_nowait(await asyncio.open_connection(self.host, self.port))
            return 0

    async def close(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
