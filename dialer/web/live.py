"""The wallboard's live updates: one reader for every browser. While anybody watches, a task
reads the snapshot (dialer.web.views.wallboard) every `every` seconds on a thread, renders it
once and hands the HTML to each watcher's queue (latest wins: a slow browser skips frames, it
never holds the others up); `/events` streams a watcher's queue as server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

log = logging.getLogger(__name__)


class Board:
    """Fans one rendering of the wallboard out to every watcher."""

    def __init__(self, render: Callable[[], str], every: float = 1.0, max_watchers: int = 500) -> None:
        self.render, self.every, self.max_watchers = render, every, max_watchers
        self.watchers: set[asyncio.Queue[str]] = set()
        self.latest: str | None = None
        self.frames = 0
        self.read_seconds = 0.0  # the last read's duration (the /metrics gauge)
        self._task: asyncio.Task[None] | None = None

    def full(self) -> bool:
        return len(self.watchers) >= self.max_watchers

    async def watch(self) -> AsyncIterator[str]:
        """The frames for one watcher, the latest first, until the watcher goes."""
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        if self.latest is not None:
            q.put_nowait(self.latest)
        self.watchers.add(q)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="wallboard")
        try:
            while True:
                yield await q.get()
        finally:
            self.watchers.discard(q)

    async def _run(self) -> None:
        while self.watchers:
            started = time.perf_counter()
            try:
                html = await anyio.to_thread.run_sync(self.render)
            except Exception as exc:  # (a database away: say so on the board, keep going)
                log.warning("wallboard not read: %s", str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
                html = ('<div class="banner red">数据库暂时无法读取 The database cannot be read now; '
                        'the wallboard retries every few seconds</div>')
            self.read_seconds = time.perf_counter() - started
            self.latest = html
            self.frames += 1
            for q in list(self.watchers):
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()  # the frame it has not taken yet is stale
                q.put_nowait(html)
            await asyncio.sleep(max(0.05, self.every - (time.perf_counter() - started)))
        self.latest = None  # nobody watching: the next watcher waits for a fresh read

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def sse(event: str, data: str) -> str:
    """One server-sent event; each line of `data` a `data:` line."""
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"


async def stream(board: Board, disconnected: Callable[[], Any]) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    async for html in board.watch():
        if await disconnected():
            break
        yield sse("board", html)


__all__ = ["Board", "sse", "stream"]
