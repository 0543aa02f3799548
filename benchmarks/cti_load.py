"""CTI load: N seats on one simulator, each dialling short scripted calls for a fixed time.

The simulator runs as its own process (`dialer sim`), the seats share this one, so each side's
CPU seconds are measured separately. Prints frames/s, command→response latency (p50/p99) and
the CPU seconds of each process; `--json` prints one JSON record instead. The codec alone is
timed too (decode and encode of a realistic mix of frames).

    python benchmarks/cti_load.py                 # 500 seats, 20 s, time scale 0.01
    python benchmarks/cti_load.py --seats 100 --seconds 5 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import percentile, print_rows
from dialer.cti import protocol as p
from dialer.cti.client import Seat

# Every call is scripted the same way: the agent picks up, the customer rings `ring` seconds,
# answers, talks `talk` seconds and hangs up; the agent then spends `wrap_up` seconds in
# after-call work (autoacw 2) before the simulated agent frees itself. All simulated seconds.
SCENARIO = """\
seed = {seed}
time_scale = {time_scale}
ring_timeout = 60
agent_ring_timeout = 30
[workload]
p_live = 1.0
p_machine = 0.0
p_busy = 0.0
live_ring = [{ring}, {ring}]
talk_mean = {talk}
talk_sd = 0
wrap_k = 1
wrap_theta = {wrap_up}
pickup = [0.3, 1.0]
"""

CODEC_FRAMES = [
    "messageType:event\nname:outbound ringing\nnumber:13912345678\ncallid:8081-00000042\n\n",
    "messageType:event\nname:outbound answered\nnumber:13912345678\ncallid:8081-00000042\n"
    "province:江苏省\ncity:常州市\nisp:中国移动\n\n",
    "messageType:event\nname:call status\ncall:外呼通话\nnumber:13912345678\n\n",
    "messageType:event\nname:status changed\nreg:已注册\ncall:外呼通话\nagent:已登录\nbusy:\nnumber:13912345678\n\n",
    "messageType:event\nname:hangup\ncallid:8081-00000042\n\n",
    "messageType:event\nname:busy status\nbusy:话后\n\n",
    "messageType:event\nname:queue status\nidle:3\nagent:25\nguest:0\nqueue:q07\n\n",
    "messageType:command response\ncommand:dial\nsuccess:true\nresultText:\n\n",
    "messageType:heartbeat response\n\n",
]


def bench_codec(n: int) -> dict[str, float]:
    frames = (CODEC_FRAMES * (n // len(CODEC_FRAMES) + 1))[:n]
    decode = p.decode
    t0 = time.perf_counter()
    messages = [decode(f) for f in frames]
    t1 = time.perf_counter()
    encode = p.encode
    for m in messages:
        encode(m)
    t2 = time.perf_counter()
    cmd = p.encode_command
    for i in range(n // 2):
        cmd("dial", dialString="9013912345678", cusid=str(i), cusname="李四", proid="7", proname="回访")
    t3 = time.perf_counter()
    return {"decoded_per_s": n / (t1 - t0), "encoded_per_s": n / (t2 - t1),
            "dial_commands_per_s": (n // 2) / (t3 - t2)}


async def start_sim(args: argparse.Namespace, scenario: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dialer", "-q", "sim", "--port", "0", "--scenario", str(scenario),
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    return proc, line.split("listening on ")[1].split()[0]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` so far, from /proc; NaN where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_seats(args: argparse.Namespace, url: str, sim_pid: int) -> dict[str, object]:
    dial_latency: list[float] = []
    list_latency: list[float] = []
    calls = 0
    sent_at: dict[int, float] = {}
    hung_up: dict[int, asyncio.Event] = {}
    seats: list[Seat] = []

    def handler(i: int):
        def on_event(msg: p.Message) -> None:
            if isinstance(msg, p.CommandResponse) and msg.command == "dial" and i in sent_at:
                now = time.perf_counter()
                if now >= measure_from:
                    dial_latency.append(now - sent_at.pop(i))
            elif isinstance(msg, p.BusyStatus) and msg.busy == "":
                hung_up[i].set()  # after-call work is over: the seat is free again
        return on_event

    for i in range(args.seats):
        hung_up[i] = asyncio.Event()
        seats.append(Seat(name=str(i), heartbeat_interval=args.heartbeat, on_event=handler(i),
                          command_timeout=30))
    await asyncio.gather(*(s.connect(url) for s in seats))
    queues = max(1, args.seats // args.queue_size)
    await asyncio.gather(*(
        s.login(f"坐席{i}", str(10000 + i), f"q{i % queues:02d}", str(20000 + i), autoacw=2)
        for i, s in enumerate(seats)))

    rng = random.Random(args.seed)
    measure_from = time.perf_counter() + args.warmup
    stop_at = measure_from + args.seconds

    async def dialler(i: int, seat: Seat) -> None:
        nonlocal calls
        await asyncio.sleep(rng.uniform(0, args.stagger))  # seats start at random, not in one burst
        while time.perf_counter() < stop_at:
            hung_up[i].clear()
            sent_at[i] = time.perf_counter()
            await seat.dial("9013912345678" if i % 2 else "913800138000", cusid=str(i))
            try:
                await asyncio.wait_for(hung_up[i].wait(), 30)
            except asyncio.TimeoutError:
                await seat.hangup()
            calls += 1

    async def lister(seat: Seat, queue: str) -> None:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            await seat.extension_list("agentidle", queue=queue)
            if t >= measure_from:
                list_latency.append(time.perf_counter() - t)
            await asyncio.sleep(1.0)

    snapshot: dict[str, float] = {}

    async def measure_start() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        snapshot.update(frames=sum(s.frames_in + s.frames_out for s in seats), calls=calls,
                        cpu=usage.ru_utime + usage.ru_stime, t=time.perf_counter(),
                        sim_cpu=process_cpu(sim_pid))

    await asyncio.gather(
        measure_start(),
        *(dialler(i, s) for i, s in enumerate(seats)),
        *(lister(seats[q], f"q{q:02d}") for q in range(queues)),
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sim_cpu = process_cpu(sim_pid) - snapshot["sim_cpu"]
    elapsed = time.perf_counter() - snapshot["t"]
    frames = sum(s.frames_in + s.frames_out for s in seats) - snapshot["frames"]
    measured_calls = calls - snapshot["calls"]
    await asyncio.gather(*(s.close() for s in seats))
    latency = dial_latency + list_latency
    return {
        "calls": measured_calls, "elapsed_s": elapsed, "client_frames": frames,
        "client_frames_per_s": frames / elapsed, "calls_per_s": measured_calls / elapsed,
        "latency_p50_ms": percentile(latency, 50) * 1e3, "latency_p99_ms": percentile(latency, 99) * 1e3,
        "dial_p50_ms": percentile(dial_latency, 50) * 1e3, "dial_p99_ms": percentile(dial_latency, 99) * 1e3,
        "list_p50_ms": percentile(list_latency, 50) * 1e3, "list_p99_ms": percentile(list_latency, 99) * 1e3,
        "responses": len(latency),
        "client_cpu_s": usage.ru_utime + usage.ru_stime - snapshot["cpu"],
        "sim_cpu_s": sim_cpu,
    }


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "load.toml"
        scenario.write_text(SCENARIO.format(
            seed=args.seed, time_scale=args.time_scale, ring=args.ring, talk=args.talk, wrap_up=args.wrap_up), encoding="utf-8")
        proc, url = await start_sim(args, scenario)
        try:
            result = await run_seats(args, url, proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = await proc.communicate()
    sim_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["sim_cpu_s_total"] = sim_cpu.ru_utime + sim_cpu.ru_stime
    tail = out.decode().strip().splitlines()
    result["sim_summary"] = tail[-1] if tail else ""
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seats", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--queue-size", type=int, default=25, help="seats per queue")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="heartbeat interval, s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds run before measuring")
    parser.add_argument("--stagger", type=float, default=1.0, help="seats start at random within this")
    parser.add_argument("--ring", type=float, default=10.0, help="simulated ring seconds before answer")
    parser.add_argument("--talk", type=float, default=120.0, help="simulated talk seconds")
    parser.add_argument("--wrap-up", type=float, default=20.0, help="mean simulated after-call work seconds")
    parser.add_argument("--codec-frames", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    codec = bench_codec(args.codec_frames)
    load = asyncio.run(main_async(args))
    record = {"seats": args.seats, "seconds": args.seconds, "time_scale": args.time_scale,
              "cpus": os.cpu_count(), **load, **{f"codec_{k}": v for k, v in codec.items()}}
    if args.json:
        print(json.dumps(record, indent=2))
        return
    rows = [
        ("seats", f"{args.seats}"),
        ("calls completed (measured)", f"{load['calls']} ({load['calls_per_s']:.0f}/s)"),
        ("client frames/s (in+out)", f"{load['client_frames_per_s']:.0f}"),
        ("command→response p50 / p99", f"{load['latency_p50_ms']:.2f} / {load['latency_p99_ms']:.2f} ms"
                                       f"  ({load['responses']} responses)"),
        ("  dial p50 / p99", f"{load['dial_p50_ms']:.2f} / {load['dial_p99_ms']:.2f} ms"),
        ("  getExtensionList p50 / p99", f"{load['list_p50_ms']:.2f} / {load['list_p99_ms']:.2f} ms"),
        ("client CPU s (measured)", f"{load['client_cpu_s']:.1f} of {load['elapsed_s']:.1f} s"),
        ("simulator CPU s (measured)", f"{load['sim_cpu_s']:.1f} of {load['elapsed_s']:.1f} s"
                                      f"  ({load['sim_cpu_s_total']:.1f} over its whole life)"),
        ("codec decode frames/s", f"{codec['decoded_per_s']:,.0f}"),
        ("codec encode frames/s", f"{codec['encoded_per_s']:,.0f}"),
        ("codec dial commands/s", f"{codec['dial_commands_per_s']:,.0f}"),
    ]
    print_rows(rows)
    print(f"simulator: {load['sim_summary']}")


if __name__ == "__main__":
    main()
