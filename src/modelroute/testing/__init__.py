"""Test support: a fault-injecting HTTP upstream that speaks the OpenAI and Anthropic wire
formats (``Simulator``; see ``simulator`` for the endpoints and ``sim_config`` for the
config), for tests of the wire and the real server; and for tests of the engine, the
in-process ``ScriptedProvider`` (``scripted``) on virtual time (``virtual_time``).
"""

from modelroute.testing.scripted import Draw, Fail, Hang, Reply, Script, ScriptedProvider
from modelroute.testing.sim_config import ModelConfig, SimulatorConfig
from modelroute.testing.sim_handler import RecordedRequest
from modelroute.testing.simulator import Simulator, run_simulator
from modelroute.testing.virtual_time import VirtualTimeLoop, run_virtual

# The brief's name for one model's scripted behaviour; the same class as ModelConfig.
SimulatedModel = ModelConfig

__all__ = [
    "Draw",
    "Fail",
    "Hang",
    "ModelConfig",
    "RecordedRequest",
    "Reply",
    "Script",
    "ScriptedProvider",
    "SimulatedModel",
    "Simulator",
    "SimulatorConfig",
    "VirtualTimeLoop",
    "run_simulator",
    "run_virtual",
]
