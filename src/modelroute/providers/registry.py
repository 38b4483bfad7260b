"""The explicit registry: provider kind -> transport. Adding a wire format is one line here."""

from __future__ import annotations

from modelroute.providers.anthropic import AnthropicProvider
from modelroute.providers.base import Provider
from modelroute.providers.http import Transport
from modelroute.providers.openai import OpenAIProvider


def build_providers(transport: Transport) -> dict[str, Provider]:
    openai = OpenAIProvider(transport)
    return {
        "openai": openai,
        "simulator": openai,  # the simulator speaks the OpenAI wire format at its /v1
        "anthropic": AnthropicProvider(transport),
    }
