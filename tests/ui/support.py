"""A gateway with its dashboard, seeded by real traffic: the quickstart policy served under
uvicorn on a real socket, the simulator as upstream (the quickstart's, with server errors on
``small`` so that some requests fall back), the official OpenAI SDK as client, and the
records written to a real store (SQLite or PostgreSQL) by the records writer."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml

from modelroute import load_policy_text
from modelroute.policy import Policy
from modelroute.records.stores import open_store
from modelroute.records.stores.base import Store
from modelroute.serve import build_app
from modelroute.testing import Simulator

from ..conftest import EXAMPLES
from ..gateway.harness import serve_app

QUICKSTART = EXAMPLES / "quickstart.yaml"
TOKEN_ENV = "MODELROUTE_TEST_ADMIN_TOKEN"
TOKEN = "adm-7d1f9c2e4b8a6f30"
PAGES = ("/ui/", "/ui/routes", "/ui/requests", "/ui/audit", "/ui/drift", "/ui/policy")

# What the traffic asks: (route or alias, prompt, times). "nope" is no route: rejected.
TRAFFIC: tuple[tuple[str, str, int], ...] = (
    ("chat", "What is the capital of France?", 14),
    ("default", "Tell me something nice", 6),
    ("support-triage", "My invoice is wrong", 6),
    ("support-triage", "The app crashes on start", 5),
    ("nope", "Hello?", 3),
)


def quickstart_policy(sim: Simulator) -> Policy:
    text = QUICKSTART.read_text().replace("http://127.0.0.1:8900/v1", sim.openai_base_url)
    return load_policy_text(text, str(QUICKSTART))


def simulator_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(
        (EXAMPLES / "simulator" / "quickstart.yaml").read_text()
    )
    config["models"]["small-v1"]["faults"] = {"server_error": 0.3}
    return config


@dataclass
class Site:
    url: str
    policy: Policy
    store_url: str
    sent: int = 0  # requests sent (each one is recorded)
    request_ids: list[str] | None = None

    def client(self, token: str | None = TOKEN) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


@contextlib.asynccontextmanager
async def dashboard_site(
    store_url: str, spool: Path, *, token: str | None = TOKEN, **options: Any
) -> AsyncIterator[Site]:
    """The gateway ``serve --admin-token env:TOKEN_ENV`` builds (``token`` None: without the
    option), serving the quickstart policy against an in-test simulator."""
    import os

    async with Simulator(simulator_config()) as sim:
        policy = quickstart_policy(sim)
        if token is not None:
            os.environ[TOKEN_ENV] = token
        app = build_app(
            policy,
            store_url=store_url,
            spool_dir=str(spool),
            content="truncated",
            traces="off",
            admin_token_env=TOKEN_ENV if token is not None else None,
            snapshots_every_s=options.pop("snapshots_every_s", None),
            **options,
        )
        try:
            async with serve_app(app) as url:
                yield Site(url, policy, store_url)
        finally:
            os.environ.pop(TOKEN_ENV, None)


async def send_traffic(site: Site) -> list[str]:
    """The TRAFFIC through the gateway with the official SDK; the record ids it answered."""
    client = openai.AsyncOpenAI(base_url=f"{site.url}/v1", api_key="sk-none", max_retries=0)
    ids: list[str] = []
    try:
        for model, prompt, times in TRAFFIC:
            for _ in range(times):
                messages = [{"role": "user", "content": prompt}]
                try:
                    raw = await client.chat.completions.with_raw_response.create(
                        model=model,
                        messages=messages,  # type: ignore[arg-type]
                    )
                    ids.append(raw.headers["x-modelroute-request-id"])
                except openai.APIStatusError as exc:
                    ids.append(exc.response.headers["x-modelroute-request-id"])
    finally:
        await client.close()
    site.sent, site.request_ids = len(ids), ids
    return ids


async def wait_for_records(store_url: str, count: int) -> Store:
    """The store, opened, once it holds ``count`` records (the writer flushes in batches)."""
    store = open_store(store_url)
    await store.open()
    for _ in range(300):
        if await store.count() >= count:
            return store
        await asyncio.sleep(0.05)
    await store.close()
    raise AssertionError(f"the store never reached {count} records")


def text_of(html: str, element_id: str) -> str:
    """The text inside the element with this id (tags stripped, entities decoded)."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(div|td|span|p)>', html, re.S)
    assert found, f"no element #{element_id} on the page"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


@dataclass(frozen=True)
class Truth:
    """What the raw rows say, aggregated here directly (not through the dashboard)."""

    requests: int
    spend_usd: float
    errors: int
    by_route: dict[str | None, int]
    by_model: dict[str | None, int]
    newest: str  # the newest request's id

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests


async def truth(store: Store) -> Truth:
    rows = await store.read_sql(
        "SELECT request_id, started_at, route, final_model, status, cost_usd FROM requests"
    )
    by_route: dict[str | None, int] = {}
    by_model: dict[str | None, int] = {}
    for _, _, route, model, _, _ in rows:
        by_route[route] = by_route.get(route, 0) + 1
        by_model[model] = by_model.get(model, 0) + 1
    newest = max(rows, key=lambda r: (r[1], r[0]))[0]
    return Truth(
        requests=len(rows),
        spend_usd=sum(float(r[5]) for r in rows),
        errors=sum(1 for r in rows if r[4] != "ok"),
        by_route=by_route,
        by_model=by_model,
        newest=str(newest),
    )


async def fell_back(store: Store, ids: list[str]) -> dict[str, Any]:
    """A stored request answered after a failed attempt (the quickstart's ``small`` fails
    30% of the time), as ``store.get`` returns it."""
    for request_id in ids:
        record = await store.get(request_id)
        assert record is not None
        attempts = record["attempts"]
        if record["status"] == "ok" and any(a["outcome"] == "failed" for a in attempts):
            return record
    raise AssertionError("no request fell back: the simulator's faults did not fire")
