"""The gateway's lifespan: start-up leaves what lives as long as the process out of the
garbage collector's passes and sets the young-generation threshold the gateway runs with."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from modelroute.policy.load import load_policy
from modelroute.router import Router
from modelroute.server.app import create_app

from ..conftest import ROOT


@pytest.fixture
def collector_settings() -> Iterator[None]:
    """The lifespan changes process-wide collector settings: put them back afterwards."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_startup_freezes_what_was_loaded_and_raises_the_young_threshold(
    collector_settings: None,
) -> None:
    gc.set_threshold(700, 10, 10)
    app = create_app(Router(load_policy(ROOT / "examples" / "quickstart.yaml")))
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            # Checked while the gateway runs, before shutdown.
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold() == (20_000, 10, 10)
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
