"""The CTI server simulator and the call model it shares with the benchmarks."""

from dialer.sim.model import AgentProfile, CustomerFate, Workload
from dialer.sim.scenario import SimConfig, load_scenario, parse_scenario
from dialer.sim.server import Simulator
from dialer.sim.trunk import Trunk

__all__ = [
    "AgentProfile", "CustomerFate", "SimConfig", "Simulator", "Trunk", "Workload",
    "load_scenario", "parse_scenario",
]
