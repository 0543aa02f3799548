"""The simulator's configuration and its TOML scenario file (format: docs/simulator.md)."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from dialer.errors import ScenarioError
from dialer.sim.model import OUTCOMES, AgentProfile, CustomerFate, Outcome, Workload
from dialer.sim.trunk import Trunk


@dataclass(frozen=True, slots=True)
class CustomerRule:
    """A number's scripted behaviour: the n-th dial gets `outcomes[n]` (the last one repeats)."""

    e164: str
    outcomes: tuple[Outcome, ...]
    ring: float = 5.0
    talk: float = 30.0

    def fate(self, dial_index: int) -> CustomerFate:
        outcome = self.outcomes[min(dial_index, len(self.outcomes) - 1)]
        if outcome == "no_answer":
            return CustomerFate(outcome)
        if outcome == "failed":
            return CustomerFate(outcome, 0.0)
        return CustomerFate(outcome, self.ring, self.talk if outcome != "busy" else 0.0)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes the simulator's behaviour."""

    seed: int = 0
    time_scale: float = 1.0
    #: ``all``: every command gets a command response; ``documented``: only login, logout and
    #: getExtensionList do (the worker must cope with both).
    respond: str = "all"
    hangup_callid: bool = True
    #: a seat's call goes on when its CTI socket drops, as on a desk phone; the next socket that
    #: logs the extension in takes the call over (False: the call ends with the socket)
    desk_phone: bool = True
    agent_ring_timeout: float = 30.0  # how long an agent's extension rings before giving up
    ring_timeout: float = 60.0  # how long the network lets an unanswered customer ring
    post_dial_delay: float = 0.5  # from the agent's pickup to the customer's ringing
    ivr_seconds: float = 5.0  # how long a caller listens to an IVR node before hanging up
    trunk: Trunk = field(default_factory=Trunk)
    workload: Workload = field(default_factory=Workload)
    customers: Mapping[str, CustomerRule] = field(default_factory=dict)
    agents: Mapping[str, AgentProfile] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.respond not in ("all", "documented"):
            raise ScenarioError(f"respond must be 'all' or 'documented', not {self.respond!r}")
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ScenarioError(f"time_scale must be a positive number, not {self.time_scale!r}")

    def agent(self, extension: str) -> AgentProfile:
        return self.agents.get(extension) or AgentProfile(extension)

    def replace(self, **changes: Any) -> SimConfig:
        return dataclasses.replace(self, **changes)


def to_e164(number: str, where: str = "") -> str:
    """A scenario's number (E.164 or as written in China) in E.164; ScenarioError if not one."""
    try:
        parsed = phonenumbers.parse(number, "CN")
    except phonenumbers.NumberParseException as exc:
        raise ScenarioError(f"{where}: {number!r} is not a phone number ({exc})") from None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _range(value: Any, where: str) -> float | tuple[float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return (float(value[0]), float(value[1]))
    raise ScenarioError(f"{where}: expected a number or [low, high], got {value!r}")


def _known(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = set(table) - allowed
    if extra:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")


def _typed(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise ScenarioError(f"{where}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise ScenarioError(f"{where}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


_TOP = {
    "seed": int, "time_scale": (int, float), "respond": str, "hangup_callid": bool, "desk_phone": bool,
    "agent_ring_timeout": (int, float), "ring_timeout": (int, float),
    "post_dial_delay": (int, float), "ivr_seconds": (int, float),
}


def parse_scenario(data: Mapping[str, Any], source: str = "scenario") -> SimConfig:
    """Build a SimConfig from a parsed TOML document. Raises ScenarioError naming the key."""
    _known(data, set(_TOP) | {"trunk", "workload", "customers", "agents"}, source)
    top = {k: _typed(data[k], t, f"{source}: {k}") for k, t in _TOP.items() if k in data}
    for k in ("time_scale", "agent_ring_timeout", "ring_timeout", "post_dial_delay", "ivr_seconds"):
        if k in top:
            top[k] = float(top[k])

    trunk_data = data.get("trunk", {})
    _known(trunk_data, {f.name for f in dataclasses.fields(Trunk)}, f"{source}: [trunk]")
    try:
        trunk = Trunk(**trunk_data)
    except TypeError as exc:
        raise ScenarioError(f"{source}: [trunk]: {exc}") from None
    for k in ("home_area_code", "outside_prefix", "ld_mobile_prefix"):
        value = getattr(trunk, k)
        if not isinstance(value, str) or not (value.isascii() and value.isdigit() or value == ""):
            raise ScenarioError(f"{source}: [trunk] {k} must be digits in quotes, got {value!r}")

    wl_data = dict(data.get("workload", {}))
    _known(wl_data, {f.name for f in dataclasses.fields(Workload)}, f"{source}: [workload]")
    defaults = Workload()
    for k, v in list(wl_data.items()):
        r = _range(v, f"{source}: [workload] {k}")
        if isinstance(getattr(defaults, k), tuple):
            wl_data[k] = r if isinstance(r, tuple) else (r, r)  # a constant is a range of one
        elif isinstance(r, tuple):
            raise ScenarioError(f"{source}: [workload] {k}: expected a number, got {v!r}")
        else:
            wl_data[k] = r
    try:
        workload = Workload(**wl_data)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{source}: [workload]: {exc}") from None

    customers: dict[str, CustomerRule] = {}
    for i, row in enumerate(data.get("customers", []), 1):
        where = f"{source}: customers #{i}"
        _known(row, {"number", "outcome", "ring", "talk"}, where)
        if "number" not in row:
            raise ScenarioError(f"{where}: number is required")
        e164 = to_e164(str(row["number"]), where)
        raw = row.get("outcome", "answer")
        outcomes = tuple(raw if isinstance(raw, list) else [raw])
        bad = [o for o in outcomes if o not in OUTCOMES]
        if not outcomes or bad:
            raise ScenarioError(f"{where}: outcome must be one of {', '.join(OUTCOMES)}, got {bad or raw!r}")
        ring = float(_typed(row.get("ring", 5.0), (int, float), f"{where}: ring"))
        talk = float(_typed(row.get("talk", 30.0), (int, float), f"{where}: talk"))
        customers[e164] = CustomerRule(e164, outcomes, ring, talk)  # type: ignore[arg-type]

    agents: dict[str, AgentProfile] = {}
    for i, row in enumerate(data.get("agents", []), 1):
        where = f"{source}: agents #{i}"
        _known(row, {"extension", "pickup", "answers", "registered", "wrap_up"}, where)
        ext = str(row.get("extension", ""))
        if not (ext.isascii() and ext.isdigit()):
            raise ScenarioError(f"{where}: extension must be digits, got {ext!r}")
        pickup = _range(row["pickup"], f"{where}: pickup") if "pickup" in row else None
        wrap = row.get("wrap_up")
        agents[ext] = AgentProfile(
            ext, pickup,
            bool(_typed(row.get("answers", True), bool, f"{where}: answers")),
            bool(_typed(row.get("registered", True), bool, f"{where}: registered")),
            None if wrap is None else float(_typed(wrap, (int, float), f"{where}: wrap_up")),
        )
    try:
        return SimConfig(**top, trunk=trunk, workload=workload, customers=customers, agents=agents)
    except ScenarioError as exc:
        raise ScenarioError(f"{source}: {exc}") from None


def load_scenario(path: str | Path) -> SimConfig:
    """Read a scenario TOML file. Raises ScenarioError with the file name and what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not UTF-8 ({exc.reason})") from None
    except ValueError:  # a NUL in the file name
        raise ScenarioError(f"{path!r}: cannot read: not a file name") from None
    return parse_scenario(data, str(path))
