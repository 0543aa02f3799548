"""A TCP proxy that can stall: the database "blinks" for the fault tests and benchmarks/chaos.py.

`StallProxy(target_host, target_port)` listens on 127.0.0.1 (port 0: a free one) and pipes each
connection to the target. `stall()` stops moving bytes both ways — the connections stay open
and silent, as behind a dead route or a frozen server, the worst case for a client (no error,
no reset) — and refuses nothing: new connections are accepted and left hanging too. `resume()`
moves the held bytes on; `cut()` resets every connection (a server restart). Runs in its own
thread with its own event loop, so a test or a benchmark drives it from anywhere.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class StallProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._conns: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="stall-proxy", daemon=True)
        self.connections = 0

    # -- control (any thread) -------------------------------------------------------------------
    def start(self) -> StallProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def stall(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)

    def cut(self) -> None:
        def reset() -> None:
            for w in list(self._conns):
                w.transport.abort()
        self._loop.call_soon_threadsafe(reset)

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._conns):
                w.transport.abort()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def url_for(self, url: str) -> str:
        """`url` (postgresql+psycopg://user@host:port/db) through this proxy."""
        head, _, rest = url.partition("://")
        auth, _, tail = rest.rpartition("@")
        db = tail.split("/", 1)[1] if "/" in tail else ""
        return f"{head}://{auth + '@' if auth else ''}{self.host}:{self.port}/{db}"

    def __enter__(self) -> StallProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the proxy (its own loop) ---------------------------------------------------------------
    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._conns.update((writer, up_w))
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)
        for w in (writer, up_w):
            self._conns.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # stalled: hold the bytes, say nothing
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()
