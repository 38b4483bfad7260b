"""The semantic response cache through the gateway, with the official ``openai`` SDK over real
sockets, the simulator upstream and the real embedding model (the ``embed`` extra): a
paraphrase hits, an unrelated prompt, other tools, another system prompt or a similarity
under the route's threshold miss, the temperature rule holds, a hit replays as a stream, and
its record (also as stored) says how similar it was and what it saved; the index holds at
most ``semantic_max_entries``, also when a later policy brings the first semantic route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelroute import Router, load_policy_text
from modelroute.cache import MemoryCache
from modelroute.cache.semantic import SemanticIndex
from modelroute.records.metrics import MetricsSink
from modelroute.records.stores.sqlite import SqliteStore

from ..gateway.fixtures import sdk_client, sim_config
from ..gateway.harness import Gateway, gateway
from .support import CACHED_POLICY, SEMANTIC_POLICY, needs_embed_extra
from .test_cache_gateway import TOOLS, FakeClock, upstream_calls

QUESTION = "What is the capital of France?"
# The simulator answers "Paris" only when the prompt says "capital of france": a hit on the
# paraphrase answers "Paris", the upstream would answer "primary answer".
PARAPHRASE = "What's France's capital city?"  # similarity about 0.94
UNRELATED = "How do I bake sourdough bread?"  # about 0.13

HISTORY: list[Any] = [
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi"},
]

pytestmark = pytest.mark.usefixtures("embed_extra")


@pytest.fixture(scope="module")
def embed_extra() -> None:
    needs_embed_extra()


def _messages(text: str, system: str | None = None) -> list[Any]:
    head = [] if system is None else [{"role": "system", "content": system}]
    return [*head, {"role": "user", "content": text}]


async def _ask(gw: Gateway, text: str, route: str = "semantic", **params: Any) -> Any:
    client = sdk_client(gw, timeout=60)
    params.setdefault("temperature", 0)
    params.setdefault("messages", _messages(text))
    return await client.chat.completions.with_raw_response.create(model=route, **params)


def _content(raw: Any) -> str | None:
    content: str | None = raw.parse().choices[0].message.content
    return content


async def test_a_paraphrase_is_answered_from_the_cache_with_its_similarity() -> None:
    async with gateway(SEMANTIC_POLICY, sim_config()) as gw:
        made = await _ask(gw, QUESTION)
        near = await _ask(gw, PARAPHRASE)
        again = await _ask(gw, QUESTION)
        assert made.headers["x-modelroute-cache"] == "miss"
        assert near.headers["x-modelroute-cache"] == "hit"
        assert near.headers["x-modelroute-attempts"] == "0"
        assert 0.9 <= float(near.headers["x-modelroute-cache-similarity"]) < 0.99
        assert _content(near) == "Paris"  # the upstream would have said "primary answer"
        assert again.headers["x-modelroute-cache"] == "hit"  # exact first: no similarity
        assert "x-modelroute-cache-similarity" not in again.headers
        assert upstream_calls(gw) == 1
        first = gw.record(made.headers["x-modelroute-request-id"])
        hit = gw.record(near.headers["x-modelroute-request-id"])
        exact = gw.record(again.headers["x-modelroute-request-id"])
    assert first.cache_hit is False and first.cost_usd > 0 and first.cache_similarity is None
    assert first.cache_embed_ms is not None and first.cache_embed_ms > 0
    assert hit.cache_hit is True and hit.cost_usd == 0 and hit.attempts == []
    assert hit.cache_similarity == pytest.approx(
        float(near.headers["x-modelroute-cache-similarity"]), abs=1e-4
    )
    assert hit.cache_saved_usd == pytest.approx(first.cost_usd)
    assert hit.cache_embed_ms is not None and hit.cache_embed_ms > 0
    assert hit.answer == "Paris" and hit.final_model == "primary"
    assert exact.cache_hit is True and exact.cache_similarity is None
    assert exact.cache_embed_ms is None  # an exact hit embeds nothing


async def test_an_unrelated_prompt_misses_and_is_kept_for_its_own_paraphrases() -> None:
    async with gateway(SEMANTIC_POLICY, sim_config()) as gw:
        await _ask(gw, QUESTION)
        other = await _ask(gw, UNRELATED)
        assert other.headers["x-modelroute-cache"] == "miss"
        assert _content(other) == "primary answer"
        near_other = await _ask(gw, "How can I bake a sourdough bread?")
        assert near_other.headers["x-modelroute-cache"] == "hit"
        assert _content(near_other) == "primary answer"
        assert upstream_calls(gw) == 2
        record = gw.record(other.headers["x-modelroute-request-id"])
    assert record.cache_hit is False and record.cache_similarity is None


async def test_only_requests_alike_in_every_other_field_share_an_answer() -> None:
    async with gateway(SEMANTIC_POLICY, sim_config()) as gw:
        await _ask(gw, QUESTION)
        differing: list[dict[str, Any]] = [
            {"tools": TOOLS},
            {"max_tokens": 50},
            {"seed": 7},
            {"top_p": 0.5},
            {"messages": _messages(PARAPHRASE, system="Answer in French.")},
            {"messages": [*HISTORY, *_messages(PARAPHRASE)]},
        ]
        for changed in differing:
            raw = await _ask(gw, PARAPHRASE, **changed)
            assert raw.headers["x-modelroute-cache"] == "miss", changed
            assert "x-modelroute-cache-similarity" not in raw.headers
        # each was kept in its own partition: with the same tools, a paraphrase hits there
        with_tools = await _ask(gw, QUESTION, tools=TOOLS)
        assert with_tools.headers["x-modelroute-cache"] == "hit"
        assert "x-modelroute-cache-similarity" in with_tools.headers
        assert upstream_calls(gw) == 1 + len(differing)


async def test_the_route_threshold_decides() -> None:
    async with gateway(SEMANTIC_POLICY, sim_config()) as gw:
        for route in ("semantic", "strict"):
            await _ask(gw, QUESTION, route=route)
        loose = await _ask(gw, PARAPHRASE, route="semantic")
        strict = await _ask(gw, PARAPHRASE, route="strict")  # similarity: 0.97
        similarity = float(loose.headers["x-modelroute-cache-similarity"])
        assert 0.9 <= similarity < 0.97
        assert strict.headers["x-modelroute-cache"] == "miss"
        assert _content(strict) == "primary answer"
        far = await _ask(gw, "What is the capital of Germany?", route="semantic")  # ~0.66
        assert far.headers["x-modelroute-cache"] == "miss"
        assert upstream_calls(gw) == 4


async def test_sampling_requests_only_where_the_route_allows_them() -> None:
    async with gateway(SEMANTIC_POLICY, sim_config()) as gw:
        for temperature in (None, 0.7):
            params = {} if temperature is None else {"temperature": temperature}
            for text in (QUESTION, PARAPHRASE):
                client = sdk_client(gw, timeout=60)
                raw = await client.chat.completions.with_raw_response.create(
                    model="semantic", messages=_messages(text), **params
                )
                assert "x-modelroute-cache" not in raw.headers
                record = gw.record(raw.headers["x-modelroute-request-id"])
                assert record.cache_hit is None and record.cache_embed_ms is None
        assert upstream_calls(gw) == 4
        await _ask(gw, QUESTION, route="sampled", temperature=0.7)
        near = await _ask(gw, PARAPHRASE, route="sampled", temperature=0.7)
        assert near.headers["x-modelroute-cache"] == "hit" and _content(near) == "Paris"
        assert upstream_calls(gw) == 5


async def _streamed(gw: Gateway, text: str) -> tuple[str, int, Any]:
    client = sdk_client(gw, timeout=60)
    raw = await client.chat.completions.with_raw_response.create(
        model="semantic", messages=_messages(text), temperature=0, stream=True
    )
    text_seen, chunks = "", 0
    async for chunk in raw.parse():
        chunks += 1
        for choice in chunk.choices:
            text_seen += choice.delta.content or ""
    return text_seen, chunks, raw.headers


async def test_a_semantic_hit_replays_as_a_stream_and_a_stream_is_kept() -> None:
    async with gateway(SEMANTIC_POLICY, sim_config()) as gw:
        await _ask(gw, QUESTION)
        text, chunks, headers = await _streamed(gw, PARAPHRASE)
        assert headers["x-modelroute-cache"] == "hit" and text == "Paris" and chunks >= 2
        assert "x-modelroute-cache-similarity" in headers
        record = gw.record(headers["x-modelroute-request-id"])
        assert record.streamed and record.cache_hit and record.cache_similarity is not None
        live, _, missed = await _streamed(gw, UNRELATED)
        assert missed["x-modelroute-cache"] == "miss"
        near = await _ask(gw, "How can I bake a sourdough bread?")
        assert near.headers["x-modelroute-cache"] == "hit" and _content(near) == live
        assert upstream_calls(gw) == 2


async def test_hits_are_counted_apart_and_stored_with_their_similarity(tmp_path: Path) -> None:
    metrics = MetricsSink(multiprocess=False)
    store = SqliteStore(tmp_path / "records.db")
    async with gateway(SEMANTIC_POLICY, sim_config(), store=store, sinks=[metrics]) as gw:
        await _ask(gw, QUESTION)
        await _ask(gw, QUESTION)
        near = await _ask(gw, PARAPHRASE)
        text = metrics.render()[0].decode()
    lines = [line for line in text.splitlines() if line.startswith("modelroute_cache_requests")]
    labels = 'model="primary",result="{}",route="semantic"'
    for result in ("hit", "semantic_hit", "miss"):
        assert f"modelroute_cache_requests_total{{{labels.format(result)}}} 1.0" in lines
    stored = SqliteStore(tmp_path / "records.db")
    await stored.open()
    try:
        found = await stored.get(near.headers["x-modelroute-request-id"])
    finally:
        await stored.close()
    assert found is not None and found["cache_hit"] is True
    assert found["cache_similarity"] == pytest.approx(
        float(near.headers["x-modelroute-cache-similarity"]), abs=1e-4
    )
    assert found["cache_embed_ms"] > 0


async def test_semantic_entries_expire_with_the_answers_ttl(embedder_index: Any) -> None:
    clock = FakeClock()
    index = embedder_index(clock)
    cache = MemoryCache(clock=clock)
    async with gateway(SEMANTIC_POLICY, sim_config(), cache=cache, semantic=index) as gw:
        await _ask(gw, QUESTION)
        clock.now += 599.0  # ttl: 10m
        assert (await _ask(gw, PARAPHRASE)).headers["x-modelroute-cache"] == "hit"
        clock.now += 1.5
        assert (await _ask(gw, PARAPHRASE)).headers["x-modelroute-cache"] == "miss"
        assert upstream_calls(gw) == 2 and len(index) == 1  # the expired entry is gone


# Unrelated to QUESTION, to UNRELATED and to each other's paraphrases (similarity < 0.5).
PLANETS = "Which planet is the largest in the solar system?"
SOURDOUGH_AGAIN = "How can I bake a sourdough bread?"  # UNRELATED's paraphrase, about 0.95


async def test_the_index_keeps_at_most_semantic_max_entries() -> None:
    async with gateway(SEMANTIC_POLICY, sim_config(), semantic_max_entries=2) as gw:
        index = gw.router.cache.semantic
        assert index is not None and index.max_entries == 2
        for text in (QUESTION, PLANETS, UNRELATED):
            assert (await _ask(gw, text)).headers["x-modelroute-cache"] == "miss"
        assert len(index) == 2  # the third distinct prompt pushed out the first
        near_last = await _ask(gw, SOURDOUGH_AGAIN)
        assert near_last.headers["x-modelroute-cache"] == "hit"
        assert "x-modelroute-cache-similarity" in near_last.headers
        near_first = await _ask(gw, PARAPHRASE)  # would hit with "Paris" if still indexed
        assert near_first.headers["x-modelroute-cache"] == "miss"
        assert _content(near_first) == "primary answer"
        # Its answer is still in the exact cache: the index's bound is the index's only.
        exact = await _ask(gw, QUESTION)
        assert exact.headers["x-modelroute-cache"] == "hit" and _content(exact) == "Paris"
        assert "x-modelroute-cache-similarity" not in exact.headers
        assert upstream_calls(gw) == 4


async def test_a_later_policy_with_the_first_semantic_route_gets_the_bound() -> None:
    plain = load_policy_text(CACHED_POLICY.replace("{sim}", "http://127.0.0.1:9/v1"))
    semantic = load_policy_text(SEMANTIC_POLICY.replace("{sim}", "http://127.0.0.1:9/v1"))
    router = Router(plain, api_keys={}, semantic_max_entries=3)
    try:
        assert router.cache.semantic is None  # no semantic route yet: no model loaded
        router.use_policy(semantic)
        assert router.cache.semantic is not None and router.cache.semantic.max_entries == 3
    finally:
        await router.aclose()


async def test_without_a_bound_the_index_keeps_its_default() -> None:
    async with gateway(SEMANTIC_POLICY, sim_config()) as gw:
        index = gw.router.cache.semantic
        assert index is not None and index.max_entries == 10_000


@pytest.fixture
def embedder_index() -> Any:
    from modelroute.learned.embed import Embedder

    embedder = Embedder()

    def make(clock: FakeClock) -> SemanticIndex:
        return SemanticIndex(embedder.encode_whole, embedder.dim, clock=clock)

    return make
