"""Every async test here runs on a virtual-time event loop (``modelroute.testing``'s
``VirtualTimeLoop``): waits take no real time and every timing is exact."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from modelroute.testing import VirtualTimeLoop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"virtual_time": VirtualTimeLoop}
