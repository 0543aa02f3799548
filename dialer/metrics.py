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
    if worker.predictive:
        lines.append(f'dialer_seats{{state="ports"}} {sum(1 for s in worker.seats.values() if s.is_port)}')
        lines.append("# TYPE dialer_callers_waiting gauge")
        lines += [f'dialer_callers_waiting{{queue="{_label(q)}"}} {len(pq.waiting)}'
                  for q, pq in sorted(worker.predictive.items())]
        lines.append("# TYPE dialer_abandon_rate gauge")  # abandoned / live answers (FCC, Ofcom)
        for c, n in worker.abandonment():
            for window, ab, live in (("24h", n.abandoned_day, n.live_day), ("30d", n.abandoned_30d, n.live_30d)):
                rate = ab / live if live else 0.0
                lines.append(f'dialer_abandon_rate{{campaign="{_label(c.name)}",window="{window}"}} {rate:.5f}')
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
