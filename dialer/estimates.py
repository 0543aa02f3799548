"""The pacer's running estimates, made to follow the day. Pure: samples in, estimates out.

Answer rates move through a day (lunch, the evening) and jump when a campaign goes from fresh
numbers to recycled ones. The answer rate — the one estimate every look-ahead multiplies by —
is kept in a `DialMemory`: the dials since the last change their outcomes show, and no more
than `DIAL_CAP`.

The change test (ADWIN, Bifet & Gavaldà 2007, with a normal bound and cut points on a geometric
grid): after every `CHECK_EVERY` dials the memory compares the answer rate of its most recent
128, 256, 512, … dials with the rate of the dials before them. When a recent part differs from
the part before it by more than `Z_CUT` standard errors — a change, not noise — the part before
it is forgotten (the longest such recent part is kept). A steady day thus keeps every dial; a
step keeps what came after it, found within about (Z_CUT · σ / Δ)² dials (a live answer rate
stepping 0.15 → 0.35: about 100). Parts are at least 128 dials because dials end out of the
order they were placed in (a busy 2–6 s after the dial, an answer 4–20 s, a no-answer at the
ring timeout): a burst of calls ends in its answers first and its no-answers last, and shorter
runs read that as changes.

The rate is then read from the memory by Lepski's rule: the longest recent part (128, 256, …
dials, or all of them) whose rate lies within `Z_AGREE` standard errors of the rate of every
shorter part. A drift too slow for the change test still leaves out the older dials as soon as
they pull the rate away from what the recent ones say; on a steady day it is the whole memory,
and the rate is the one the pacer read before (answers / dials). So the memory is sized by the
evidence: how far recent and older dials disagree, against their noise.

The times — ring times of answered calls, talks, after-call work, whole spells — are sliding
windows of the last `CAP` (`Window`). A change test that cut them was built and measured
(docs/benchmarks.md): it made changing days worse (talks drifting 90 → 210 → 90 s: 2.61 %
abandonment against 2.35 % at 20 agents), because the pacer reads a talking agent's chances from
the talks longer than its present one — the tail — and a memory cut short has too few of them;
a long window's tail follows a change by itself, as new long talks replace old ones.

A warm start replays the campaign's recent record (the database's attempts and seat events,
`History`) through the same `observe_*` calls, so a restarted worker, or a second one, starts
with what the campaign has shown, and the change test decides what of it to keep.
"""

from __future__ import annotations

import math
from bisect import bisect_left as _left
from bisect import insort as _insort
from collections import deque
from dataclasses import dataclass, field

MIN_SAMPLES = 30  # answered calls and finished talks needed before looking ahead
MIN_PART = 128  # the shortest recent run of dials the change test and Lepski's rule look at
Z_CUT = 4.5  # a recent part this many standard errors off the part before it: a change
Z_AGREE = 3.0  # Lepski: a longer run's answer rate must lie within this of each shorter one's
CHECK_EVERY = 4  # dials between change tests (a change is found at most this many dials late)
CAP = 2000  # times kept, per kind
DIAL_CAP = 20000  # dials kept at most
#: a warm start reads the campaign's record of this many seconds before it (dialer/store/history.py)
WARM_SECONDS = 3600.0


class DialMemory:
    """Outcomes of dials (1 answered, 0 not) since the last change found, at most `cap`: prefix
    sums make any recent part's rate a subtraction."""

    __slots__ = ("cap", "n", "_sum", "_lo", "_since", "cuts")

    def __init__(self, cap: int = DIAL_CAP) -> None:
        self.cap = cap
        self.n = 0  # dials kept
        self._sum = [0]  # prefix sums of the outcomes (the kept ones: the last n)
        self._lo = 0  # entries at the front of the prefix sums no longer kept
        self._since = 0
        self.cuts = 0  # changes found

    def __len__(self) -> int:
        return self.n

    def add(self, answered: bool) -> None:
        s = self._sum
        s.append(s[-1] + answered)
        self.n += 1
        if self.n > self.cap:
            self._drop(1)
        self._since += 1
        if self._since >= CHECK_EVERY:
            self._since = 0
            keep = self.changed_at()
            if keep:
                self.cuts += 1
                self._drop(self.n - keep)

    def rate(self, last: int | None = None) -> float:
        """The answer rate of the `last` dials (all by default)."""
        s, n = self._sum, self.n
        k = n if last is None else min(last, n)
        return (s[-1] - s[-1 - k]) / k if k else 0.0

    def changed_at(self) -> int:
        """0 when no recent part differs from the part before it by more than `Z_CUT` standard
        errors; else the length of the longest recent part that does (what is to be kept)."""
        s, n = self._sum, self.n
        if n < 2 * MIN_PART:
            return 0
        top = s[-1]
        total = top - s[-1 - n]
        p = total / n
        var = p * (1.0 - p)
        if var <= 0:
            return 0
        keep, part, z2 = 0, MIN_PART, Z_CUT * Z_CUT * var
        while n - part >= MIN_PART:
            recent = top - s[-1 - part]
            diff = recent / part - (total - recent) / (n - part)
            if diff * diff > z2 * (1.0 / part + 1.0 / (n - part)):
                keep = part
            part *= 2
        return keep

    def _drop(self, k: int) -> None:
        """Forget the `k` oldest dials."""
        self.n -= k
        self._lo += k
        if self._lo > 4096 and self._lo * 2 > len(self._sum):  # bounded, however long the run
            base = self._sum[self._lo]
            self._sum = [v - base for v in self._sum[self._lo:]]
            self._lo = 0


class Window:
    """The last `cap` values of one kind of time, sorted (`values`: the pacer's lookups)."""

    __slots__ = ("cap", "values", "order")

    def __init__(self, cap: int = CAP) -> None:
        self.cap = cap
        self.values: list[float] = []
        self.order: deque[float] = deque()

    def __len__(self) -> int:
        return len(self.order)

    def add(self, x: float) -> None:
        _insort(self.values, x)
        self.order.append(x)
        if len(self.order) > self.cap:  # the oldest goes: the estimates follow the day
            del self.values[_left(self.values, self.order.popleft())]


@dataclass
class History:
    """A campaign's recent record, oldest first, to warm the estimates with: dials (answered,
    ring time of an answered call or None), talks (seconds, whether after-call work followed),
    after-call work (seconds) and whole spells (seconds)."""

    dials: list[tuple[bool, float | None]] = field(default_factory=list)
    talks: list[tuple[float, bool]] = field(default_factory=list)
    wraps: list[float] = field(default_factory=list)
    spells: list[float] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.dials or self.talks or self.wraps or self.spells)


class Estimates:
    """Running estimates the worker keeps (pure data; `observe_*` update them). The sorted
    samples the pacer looks up are `ring_times`, `busy_times` (whole spells), `wrap_times`,
    `talk_times` (talks followed by after-call work) and `short_times` (talks with none: an
    answering machine's)."""

    def __init__(self) -> None:
        self.dials = 0  # seen in all (the memories hold what is still believed)
        self.answers = 0  # answered (live or machine), seen in all
        self.spells_seen = 0  # finished spells, seen in all
        self._dials = DialMemory()
        self._ring, self._busy, self._wrap, self._talk, self._short = (Window() for _ in range(5))
        self._p: float | None = None  # the answer rate, worked out once per dial seen
        self._p_last: int | None = None  # how many recent dials it is read from (None: all)
        self._p_choice = 0  # dials seen when that was chosen

    # the sorted samples `pacing.decide` looks up
    @property
    def ring_times(self) -> list[float]:
        return self._ring.values

    @property
    def busy_times(self) -> list[float]:
        return self._busy.values

    @property
    def wrap_times(self) -> list[float]:
        return self._wrap.values

    @property
    def talk_times(self) -> list[float]:
        return self._talk.values

    @property
    def short_times(self) -> list[float]:
        return self._short.values

    def observe_dial_end(self, answered: bool, ring: float | None) -> None:
        self.dials += 1
        self._dials.add(answered)
        self._p = None
        if answered:
            self.answers += 1
            if ring is not None:
                self._ring.add(ring)

    def observe_agent_busy(self, seconds: float) -> None:
        """A finished spell: from the bridge to the agent being free again."""
        self.spells_seen += 1
        self._busy.add(seconds)

    def observe_wrap(self, seconds: float) -> None:
        """A finished after-call work (the worker sees it start at the hangup)."""
        self._wrap.add(seconds)

    def observe_talk(self, seconds: float, wrapped: bool) -> None:
        """A finished talk, from the bridge to the hangup, and whether after-call work followed
        (none after an answering machine)."""
        (self._talk if wrapped else self._short).add(seconds)

    def warm(self, history: History) -> None:
        """Learn a campaign's recent record, oldest first, as if it had been seen here."""
        for answered, ring in history.dials:
            self.observe_dial_end(answered, ring)
        for seconds, wrapped in history.talks:
            self.observe_talk(seconds, wrapped)
        for seconds in history.wraps:
            self.observe_wrap(seconds)
        for seconds in history.spells:
            self.observe_agent_busy(seconds)

    @property
    def p_answer(self) -> float:
        """The answer rate of the longest recent run of dials that agrees with every shorter
        one (Lepski's rule; see the module's docstring)."""
        if self._p is None:
            if self.dials - self._p_choice >= CHECK_EVERY or self._p_choice == 0:
                # which recent run to read is chosen again every few dials (it changes slowly);
                # the rate of that run is read after every dial
                self._p_last, self._p_choice = _lepski(self._dials), self.dials
            self._p = self._dials.rate(self._p_last)
        return self._p

    @property
    def rate_from(self) -> int:
        """How many recent dials `p_answer` is read from."""
        _ = self.p_answer  # (chooses them)
        return len(self._dials) if self._p_last is None else min(self._p_last, len(self._dials))

    @property
    def ready(self) -> bool:
        # ring times too: an answer whose ringing the worker did not see has none
        return self.answers >= MIN_SAMPLES and min(len(self._ring.values), len(self._busy.values)) >= MIN_SAMPLES

    @property
    def changes(self) -> int:
        """Changes in the answer rate found so far."""
        return self._dials.cuts

    def memory(self) -> dict[str, int]:
        """How many samples of each kind are believed now."""
        return {"dials": len(self._dials), "ring": len(self._ring), "spells": len(self._busy),
                "wraps": len(self._wrap), "talks": len(self._talk), "short_talks": len(self._short)}

    def copy(self) -> Estimates:
        """An independent copy (benchmarks keep the estimates of sampled decisions)."""
        other = Estimates.__new__(Estimates)
        other.__dict__.update(self.__dict__)
        d = DialMemory.__new__(DialMemory)
        for slot in DialMemory.__slots__:
            setattr(d, slot, getattr(self._dials, slot))
        d._sum = list(self._dials._sum)
        other._dials = d
        for name in ("_ring", "_busy", "_wrap", "_talk", "_short"):
            w: Window = getattr(self, name)
            c = Window(w.cap)
            c.values, c.order = list(w.values), deque(w.order)
            setattr(other, name, c)
        return other


def _lepski(m: DialMemory) -> int | None:
    """How many recent dials to read the rate from: the longest recent part (`MIN_PART`, twice
    that, …, or all: None) whose rate agrees with the rate of every shorter one — that is, lies
    in every shorter part's band (rate ± Z_AGREE standard errors): in their intersection."""
    s, n = m._sum, m.n
    top = s[-1]
    whole = (top - s[-1 - n]) / n if n else 0.0
    var = whole * (1.0 - whole)
    if var <= 0:
        return None
    best, lo, hi = None, -math.inf, math.inf
    k = MIN_PART
    while k < n:
        rate = (top - s[-1 - k]) / k
        if not lo <= rate <= hi:
            return best
        band = Z_AGREE * math.sqrt(var / k)
        lo, hi = max(lo, rate - band), min(hi, rate + band)
        best = k
        k *= 2
    return None if lo <= whole <= hi else best
