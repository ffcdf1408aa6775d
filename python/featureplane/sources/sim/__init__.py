"""Built-in order-flow simulator: a deterministic multi-symbol L2 + trades session.

The model (`featureplane.sim/zi-queue-v1`) is a zero-intelligence queue model in the spirit of
Cont, Stoikov and Talreja (2010), run on an integer L2 book per symbol: limit orders at a
geometric distance from the opposite touch, cancellations proportional to resting depth, market
orders that sweep the opposite best levels (one trade row per level hit), plus occasional
liquidity pulls (spread widening) and one-sided moments. Feed faults (sequence gaps with a
resync snapshot, duplicates, late out-of-order copies) can be injected. See docs/simulator.md.

Examples
--------
>>> from featureplane.sources.sim import FaultSpec, SimConfig, simulate
>>> session = simulate(SimConfig(seed=1, n_messages=1_000,
...                              faults=(FaultSpec("gap", "SIMBTC", at=0.5, resync_after=20),)))
>>> session.symbols.name_of(0), session.faults[0].kind
('SIMBTC', 'gap')
"""

from __future__ import annotations

from featureplane.sources.sim.config import (
    DEFAULT_INSTRUMENTS,
    FAULT_KINDS,
    FaultKind,
    FaultSpec,
    SimConfig,
    SimInstrument,
    SimModel,
)
from featureplane.sources.sim.session import GENERATOR, InjectedFault, SimSession, simulate

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "FAULT_KINDS",
    "GENERATOR",
    "FaultKind",
    "FaultSpec",
    "InjectedFault",
    "SimConfig",
    "SimInstrument",
    "SimModel",
    "SimSession",
    "simulate",
]
