"""`dialer worker --metrics-port P`: the worker's counters in the Prometheus text format."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dialer.worker import Worker


def render(worker: Worker) -> str:
    lines = [
        "# TYPE dialer_dials_total counter", f"dialer_dials_total {worker.stats.dials}",
        "# TYPE dialer_calls_in_flight gauge", f"dialer_calls_in_flight {worker.calls_in_flight}",
        "# TYPE dialer_seats gauge",
        f'dialer_seats{{state="logged_in"}} {sum(1 for s in worker.seats.values() if s.logged_in)}',
        f'dialer_seats{{state="total"}} {len(worker.seats)}',
        "# TYPE dialer_outcomes_total counter",
    ]
    lines += [f'dialer_outcomes_total{{outcome="{k}"}} {v}' for k, v in sorted(worker.stats.outcomes.items())]
    return "\n".join(lines) + "\n"


async def serve_metrics(worker: Worker, port: int, host: str = "127.0.0.1") -> asyncio.base_events.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            body = render(worker).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
