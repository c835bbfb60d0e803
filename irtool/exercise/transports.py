"""How an incident's hosts are reached: an exercise gets simulated hosts and nothing else.

The one place that decides, for every face: whatever the inventory of an
exercise says, and whatever the face would otherwise build, an exercise's
engine is handed the simulated transport under every transport name. The
live transports (and with them the keyring) are not even built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from irtool.engine.state import IncidentState
from irtool.exercise.replies import ScenarioHosts
from irtool.model.inventory import Transport as TransportName
from irtool.remote.base import Transport
from irtool.remote.simulated import SimulatedTransport


def simulated_transports(state: IncidentState) -> dict[str, Transport]:
    hosts = ScenarioHosts(state)
    simulated = SimulatedTransport(hosts.answer, hosts.answer_file, hosts.answer_listing)
    return {name.value: simulated for name in TransportName}


def transports_for(
    state: IncidentState, live: Callable[[], Mapping[str, Transport]]
) -> Mapping[str, Transport]:
    """Simulated transports for an exercise; `live()` is called for a live incident only."""
    if state.mode == "exercise" or state.exercise is not None:
        return simulated_transports(state)
    return live()
