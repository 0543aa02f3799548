"""One OB-20 shift, event by event: the agents, the calls on the dialer's ports, the policy that
paces them. Agents may be split between workers (`split`), each pacing its own with estimates of
its own and reading the others' abandonment counts every `share_every` seconds, as workers read
the database; a worker may restart mid-shift (`restart`), cold or warmed from the campaign's
recent history; the live answer rate and the talk mean may follow a schedule (`day.py`)."""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import statistics
from collections import deque
from dataclasses import dataclass, field, replace

from dialer import estimates, pacing
from dialer.sim.model import Workload, draw_fate, draw_pickup, draw_wrap_up

from .day import retune_times, value_at

ABANDON_AFTER = 2.0
SLOT = 300.0  # occupancy is also kept by 5-minute slot
#: what the worker sees of an agent's state (picking up counts as on the call)
_VISIBLE = {"ready": "ready", "pickup": "busy", "talk": "busy", "wrap": "wrap", "dialling": "busy"}
_READY = pacing.AgentState("ready")


@dataclass
class Result:
    policy: str
    agents: int
    seed: int
    talk: float = 0.0
    live: int = 0
    abandoned: int = 0
    dials: int = 0
    connects: int = 0
    idle_wait: float = 0.0
    shift: float = 0.0
    slots: list[float] = field(default_factory=list)  # live talk time by 5-minute slot
    changes: int = 0  # changes the estimates found (our pacer)

    @property
    def occupancy(self) -> float:
        return self.talk / (self.agents * self.shift)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0

    def occupancy_between(self, start: float, end: float) -> float:
        """Talk occupancy over [start, end), whole 5-minute slots."""
        a, b = int(start // SLOT), int(math.ceil(end / SLOT))
        return sum(self.slots[a:b]) / (self.agents * SLOT * max(1, b - a))


@dataclass
class Agent:
    i: int
    pool: Pool
    state: str = "ready"  # ready | pickup | talk | wrap | dialling (progressive)
    since: float = 0.0
    bridged: float = -1.0
    free_at: float = -1.0  # when a talking or wrapping agent will be free (for the oracle)


@dataclass
class Call:
    placed: float
    outcome: str
    ring: float
    talk: float
    answered_at: float = -1.0


class Pool:
    """One worker's agents and what its pacer knows."""

    def __init__(self, index: int, agents: range) -> None:
        self.index = index
        self.agents = [Agent(i, self) for i in agents]
        self.n = len(self.agents)
        self.ready: deque[Agent] = deque(self.agents)  # longest ready first
        self.flight: dict[int, Call] = {}
        self.waiting: deque[tuple[Call, float]] = deque()  # answered, waiting for an agent (deadline)
        self.est = pacing.Estimates()
        self.talking = 0  # agents on a call (picking up or talking), not in wrap-up
        self.level = 1.0  # ViciDial adaptive
        self.samples: list[tuple[int, int]] = []
        self.live = self.abandoned = 0  # its own calls'
        self.others = (0, 0)  # the other workers' (abandoned, live), as last read
        self.since = 0.0  # when its worker started: it knows nothing that began before


@dataclass
class Sim:
    policy: str
    n: int
    seed: int
    w: Workload
    shift: float
    ring_timeout: float
    param: float = 1.0
    pacer: pacing.PacerConfig = field(default_factory=pacing.PacerConfig)
    schedules: dict = field(default_factory=dict)  # Workload field -> knots (day.py)
    split: int = 1  # workers the agents are split between
    share_every: float = 5.0  # seconds between reads of the other workers' counts
    restart: dict | None = None  # {"at": seconds, "warm": bool}: the first worker restarts
    rng: random.Random = field(init=False)
    now: float = 0.0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.events: list[tuple[float, int, str, object]] = []
        self.seq = itertools.count()
        cut = [self.n * k // self.split for k in range(self.split + 1)]
        self.pools = [Pool(k, range(cut[k], cut[k + 1])) for k in range(self.split)]
        self.agents = [a for p in self.pools for a in p.agents]
        self.result = Result(self.policy, self.n, self.seed, shift=self.shift,
                             slots=[0.0] * int(math.ceil(self.shift / SLOT)))
        self.ids = itertools.count()
        self._ours = replace(self.pacer, base_z=self.param)  # our pacer's settings, made once
        # the campaign's record (the database's attempts and seat events), for a warm start
        self.history: dict[str, list] = {"dials": [], "talks": [], "wraps": [], "spells": []}
        self._record = bool(self.restart and self.restart.get("warm"))

    @property
    def est(self) -> pacing.Estimates:
        return self.pools[0].est

    # -- events ---------------------------------------------------------------------------------
    def at(self, t: float, kind: str, payload: object = None) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, payload))

    def run(self) -> Result:
        if self.policy == "progressive":
            for a in self.agents:
                self.at(0.0, "agent_dial", a)
        else:
            self.at(0.0, "tick")
        if self.policy == "adaptive":
            for pool in self.pools:
                self.at(15.0, "adapt", pool)
        for t in retune_times(self.schedules, self.shift):
            self.at(t, "retune")
        if self.split > 1:
            self.at(self.share_every, "share")
        if self.restart:
            self.at(self.restart["at"], "restart", self.pools[0])
        while self.events:
            t, _, kind, payload = heapq.heappop(self.events)
            if t > self.shift:
                break
            self.now = t
            getattr(self, "on_" + kind)(payload)
        self.result.changes = sum(p.est.changes for p in self.pools)
        return self.result

    def on_retune(self, _: object) -> None:
        self.w = replace(self.w, **{name: value_at(knots, self.now) for name, knots in self.schedules.items()})

    def on_share(self, _: object) -> None:
        r = self.result
        for pool in self.pools:
            pool.others = (r.abandoned - pool.abandoned, r.live - pool.live)
        self.at(self.now + self.share_every, "share")

    def on_restart(self, pool: Pool) -> None:
        """The worker's memory is lost: its estimates, and how long each agent has been in its
        state. The calls up carry on (the server has them); the new worker learns nothing from
        what began before it. Warm: it reads the campaign's recent record first."""
        pool.est, pool.since = pacing.Estimates(), self.now
        if self.restart.get("warm"):
            since = self.now - estimates.WARM_SECONDS
            h = self.history
            pool.est.warm(pacing.History(
                dials=[(a, r) for t, a, r in h["dials"] if t >= since], talks=[(s, w) for t, s, w in h["talks"] if t >= since],
                wraps=[s for t, s in h["wraps"] if t >= since], spells=[s for t, s in h["spells"] if t >= since]))

    # -- predictive: calls on ports ---------------------------------------------------------------
    def place(self, pool: Pool, count: int) -> None:
        for _ in range(count):
            fate = draw_fate(self.rng, self.w)
            call = Call(self.now, fate.outcome, fate.ring, fate.talk)
            cid = next(self.ids)
            pool.flight[cid] = call
            self.result.dials += 1
            if fate.answers:
                self.at(self.now + fate.ring, "answer", (pool, cid))
            elif fate.outcome == "busy":
                self.at(self.now + fate.ring, "unanswered", (pool, cid))
            else:
                self.at(self.now + self.ring_timeout, "unanswered", (pool, cid))

    def on_unanswered(self, payload: tuple[Pool, int]) -> None:
        pool, cid = payload
        call = pool.flight.pop(cid)
        if call.placed >= pool.since:
            pool.est.observe_dial_end(False, None)
        if self._record:
            self.history["dials"].append((self.now, False, None))

    def on_answer(self, payload: tuple[Pool, int]) -> None:
        pool, cid = payload
        call = pool.flight.pop(cid)
        call.answered_at = self.now
        if call.placed >= pool.since:
            pool.est.observe_dial_end(True, self.now - call.placed)
        if self._record:
            self.history["dials"].append((self.now, True, self.now - call.placed))
        if call.outcome == "answer":
            self.result.live += 1
            pool.live += 1
        deadline = self.now + ABANDON_AFTER
        if not self.bridge(pool, call, deadline):
            pool.waiting.append((call, deadline))
            self.at(deadline, "deadline", (pool, call))

    def bridge(self, pool: Pool, call: Call, deadline: float) -> bool:
        """Hand `call` to the pool's longest-ready agent if the pickup lands before the deadline."""
        if not pool.ready:
            return False
        agent = pool.ready[0]
        pickup = draw_pickup(self.rng, self.w)
        if self.now + pickup > deadline:
            return False
        pool.ready.popleft()
        self.result.idle_wait += self.now - agent.since
        agent.state, agent.since = "pickup", self.now
        pool.talking += 1
        self.at(self.now + pickup, "pickup_done", (agent, call))
        return True

    def on_pickup_done(self, payload: tuple[Agent, Call]) -> None:
        payload[0].pool.talking -= 1
        self.on_talk(payload)

    def on_talk(self, payload: tuple[Agent, Call]) -> None:
        agent, call = payload
        agent.state, agent.since = "talk", self.now
        agent.bridged = self.now
        agent.pool.talking += 1
        if call.outcome == "answer":
            self.result.connects += 1
            talk = min(call.talk, self.shift - self.now)
            self.result.talk += talk
            self._slot_talk(self.now, talk)
            wrap = draw_wrap_up(self.rng, self.w)
            self.at(self.now + call.talk, "wrap", (agent, wrap))
        else:  # a machine: a short call, no wrap-up
            wrap = 0.0
            self.at(self.now + call.talk, "wrap", (agent, 0.0))
        agent.free_at = self.now + call.talk + wrap

    def _slot_talk(self, start: float, seconds: float) -> None:
        slots, end = self.result.slots, start + seconds
        i = int(start // SLOT)
        while start < end and i < len(slots):
            edge = min(end, (i + 1) * SLOT)
            slots[i] += edge - start
            start, i = edge, i + 1

    def on_wrap(self, payload: tuple[Agent, float]) -> None:
        agent, wrap = payload
        agent.pool.talking -= 1
        if wrap <= 0:
            self.on_free(agent)
            return
        agent.state, agent.since = "wrap", self.now  # the worker sees the hangup: wrap-up starts
        self.at(self.now + wrap, "free", agent)

    def on_free(self, agent: Agent) -> None:
        pool = agent.pool
        est, seen, h = pool.est, agent.bridged >= pool.since, self.history if self._record else None
        if agent.state == "wrap":  # learnt only when the spell is over, as the worker would
            if agent.since >= pool.since:
                est.observe_wrap(self.now - agent.since)
            if agent.bridged >= 0 and seen:
                est.observe_talk(agent.since - agent.bridged, True)
            if h is not None:
                h["wraps"].append((self.now, self.now - agent.since))
                h["talks"].append((self.now, agent.since - agent.bridged, True))
        elif agent.bridged >= 0:
            if seen:
                est.observe_talk(self.now - agent.bridged, False)
            if h is not None:
                h["talks"].append((self.now, self.now - agent.bridged, False))
        if agent.bridged >= 0:
            if seen:
                est.observe_agent_busy(self.now - agent.bridged)
            if h is not None:
                h["spells"].append((self.now, self.now - agent.bridged))
            agent.bridged = -1.0
        agent.state, agent.since = "ready", self.now
        if self.policy == "progressive":
            self.on_agent_dial(agent)
            return
        pool.ready.append(agent)
        while pool.waiting and pool.ready:
            call, deadline = pool.waiting[0]
            if deadline < self.now or not self.bridge(pool, call, deadline):
                break
            pool.waiting.popleft()
        self.pace(pool)

    def on_deadline(self, payload: tuple[Pool, Call]) -> None:
        pool, call = payload
        for i, (c, _) in enumerate(pool.waiting):
            if c is call:
                del pool.waiting[i]
                if call.outcome == "answer":
                    self.result.abandoned += 1
                    pool.abandoned += 1
                break

    def on_tick(self, _: object) -> None:
        for pool in self.pools:
            self.pace(pool)
        self.at(self.now + 1.0, "tick")

    def on_adapt(self, pool: Pool) -> None:
        if pool.samples:
            avg_ready = statistics.fmean(r for r, _ in pool.samples)
            avg_wait = statistics.fmean(w for _, w in pool.samples)
            pool.level *= 1 + (avg_ready - avg_wait) / pool.n
            pool.level = min(3.0, max(1.0, pool.level))
            if self.result.live and self.result.abandoned / self.result.live > 0.03:
                pool.level = max(1.0, pool.level / 2)
        pool.samples.clear()
        self.at(self.now + 15.0, "adapt", pool)

    def pace(self, pool: Pool) -> None:
        p = self.policy
        ready = len(pool.ready)
        if p == "adaptive":
            pool.samples.append((ready, len(pool.waiting)))
        if p in ("ratio", "adaptive"):
            # ViciDial: level × (agents waiting + agents in calls) − calls up (ringing, waiting
            # for an agent, and those the agents are on)
            r = self.param if p == "ratio" else pool.level
            up = len(pool.flight) + len(pool.waiting) + pool.talking
            self.place(pool, max(0, round(r * (ready + pool.talking)) - up))
        elif p == "lookahead":
            est = pool.est
            if not est.ready:
                self.place(pool, max(0, ready - len(pool.flight) - len(pool.waiting)))
                return
            soon = _soon(est.busy_times, self.now, pool.agents, 12.0)
            target = self.param * (ready + soon) / max(est.p_answer, 1e-3)
            self.place(pool, max(0, math.floor(target) - len(pool.flight)))
        elif p in ("ours", "oracle"):
            # the oracle is our pacer told when each talking or wrapping agent will be free: a
            # bound on what better predictions of the agents could give (not in the default table)
            snap = self.snapshot(pool, oracle=p == "oracle")
            self.place(pool, pacing.decide(snap, pool.est, self._ours))

    def snapshot(self, pool: Pool, oracle: bool = False) -> pacing.Snapshot:
        """What the pool's worker would see now; with `oracle`, also when each talking or
        wrapping agent will be free. A ready agent is `READY`, as the worker gives it (how long
        it has been ready does not count). The agents' states are made with `tuple.__new__`,
        which is what `AgentState(...)` does less the Python frame of a named tuple's
        constructor: this runs at every decision for every agent."""
        now, state, make, ready = self.now, pacing.AgentState, tuple.__new__, _READY
        agents = [ready if a.state == "ready" else make(state, (
            _VISIBLE[a.state], now - (a.bridged if a.state == "talk" else a.since),
            a.free_at - now if oracle and a.state in ("talk", "wrap") else None)) for a in pool.agents]
        if pool.since:  # restarted: a state that began before is seen from the restart on
            agents = [a if a is ready or a[1] <= now - pool.since else make(state, (a[0], now - pool.since, a[2]))
                      for a in agents]
        ab, live = pool.others
        return pacing.Snapshot(
            agents=agents, calls_in_flight=[now - c.placed for c in pool.flight.values()],
            waiting=len(pool.waiting), abandoned_today=pool.abandoned + ab, live_today=pool.live + live)

    # -- progressive: the agent's own seat dials ----------------------------------------------------
    def on_agent_dial(self, agent: Agent) -> None:
        agent.state, agent.since = "dialling", self.now
        pickup = draw_pickup(self.rng, self.w)
        fate = draw_fate(self.rng, self.w)
        self.result.dials += 1
        start = self.now + pickup
        if fate.answers:
            call = Call(start, fate.outcome, fate.ring, fate.talk)
            if fate.outcome == "answer":
                self.result.live += 1
            self.at(start + fate.ring, "talk", (agent, call))
        else:
            self.at(start + (fate.ring if fate.outcome == "busy" else self.ring_timeout), "agent_dial", agent)


def _soon(times: list[float], now: float, agents: list[Agent], horizon: float) -> float:
    """Σ over agents on a call or in wrap-up of P(spell ends within `horizon` | it has lasted so
    long) — pacing's spell estimate, inlined: this runs on every decision of the look-ahead."""
    n, br, total, top = len(times), bisect.bisect_right, 0.0, len(times) - pacing.MIN_TAIL
    for a in agents:
        bridged = a.bridged
        if bridged >= 0:  # talking or in wrap-up (set at the bridge, cleared when free)
            e = now - bridged
            i = br(times, e)
            if i <= top:
                total += (br(times, e + horizon, i) - i) / (n - i)
    return total


def simulate(args: tuple[str, int, int, float, dict]) -> Result:
    """One run: (policy, agents, seed, the policy's parameter, options). The options: `shift`,
    `ring_timeout`, `workload` (Workload fields), and optionally `pacer` (PacerConfig fields),
    `schedules` (Workload field -> knots), `split`, `share_every`, `restart`."""
    policy, n, seed, param, opts = args
    w = Workload(**opts["workload"])
    pacer = pacing.PacerConfig(**opts.get("pacer", {}))
    schedules = {k: [tuple(x) for x in v] for k, v in opts.get("schedules", {}).items()}
    if schedules:
        w = replace(w, **{k: value_at(v, 0.0) for k, v in schedules.items()})
    return Sim(policy, n, seed, w, opts["shift"], opts["ring_timeout"], param, pacer, schedules,
               opts.get("split", 1), opts.get("share_every", 5.0), opts.get("restart")).run()
