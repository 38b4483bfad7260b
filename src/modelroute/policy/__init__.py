"""The policy language: schema, loading with located errors, compiled form, content hash."""

from modelroute.policy.compiled import Model, Policy, Route
from modelroute.policy.load import load_policy, load_policy_dict, load_policy_text

__all__ = ["Model", "Policy", "Route", "load_policy", "load_policy_dict", "load_policy_text"]
