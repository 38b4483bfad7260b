"""Test support: a fault-injecting upstream that speaks the OpenAI and Anthropic wire formats.

See ``modelroute.testing.simulator`` for the endpoints and ``sim_config`` for the config.
"""

from modelroute.testing.sim_config import ModelConfig, SimulatorConfig
from modelroute.testing.sim_handler import RecordedRequest
from modelroute.testing.simulator import Simulator, run_simulator

# The brief's name for one model's scripted behaviour; the same class as ModelConfig.
SimulatedModel = ModelConfig

__all__ = [
    "ModelConfig",
    "RecordedRequest",
    "SimulatedModel",
    "Simulator",
    "SimulatorConfig",
    "run_simulator",
]
