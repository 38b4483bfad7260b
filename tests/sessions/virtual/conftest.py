"""Every async test here runs on a virtual-time event loop: pins lapse on the loop's clock,
in no real time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from modelroute.testing import VirtualTimeLoop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"virtual_time": VirtualTimeLoop}
