"""`modelroute serve --cache-max-entries N --cache-max-bytes SIZE` as a real process, asked
with the official ``openai`` SDK: the in-process response cache keeps at most N answers (the
least recently used goes first), and a bound that is not one is a one-line error, exit 2.
`--semantic-max-entries N` likewise bounds the semantic cache's index (with the real
embedding model, the ``embed`` extra)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from .cache.support import needs_embed_extra
from .conftest import run_cli
from .gateway.harness import free_port
from .serve_process import quickstart_policy, start_serve, stop, wait_ready


def _cached_policy(tmp_path: Path) -> Path:
    policy, _ = quickstart_policy(tmp_path)
    text = policy.read_text()
    marker = "    fallbacks: [backup]\n"
    assert marker in text  # the chat route's last line
    policy.write_text(text.replace(marker, marker + "    cache: {ttl: 1h}\n", 1))
    return policy


def _asked(client: openai.OpenAI, question: str) -> tuple[str, str, bool]:
    """What the cache said, the answer, and whether it was a semantic hit."""
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": question}], temperature=0
    )
    content = raw.parse().choices[0].message.content
    assert content
    semantic = "x-modelroute-cache-similarity" in raw.headers
    return raw.headers["x-modelroute-cache"], content, semantic


def _cache_says(client: openai.OpenAI, question: str) -> str:
    return _asked(client, question)[0]


def test_the_cache_keeps_at_most_max_entries(tmp_path: Path) -> None:
    policy = _cached_policy(tmp_path)
    port = free_port()
    args = ("--store", "none", "--cache-max-entries", "2", "--cache-max-bytes", "1MB")
    proc = start_serve(policy, port, *args, stderr=tmp_path / "stderr")
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        with client:
            asked = [_cache_says(client, f"Question {i}?") for i in range(3)]
            assert asked == ["miss", "miss", "miss"]
            # Two entries kept: the third answer pushed out the first.
            assert _cache_says(client, "Question 2?") == "hit"
            assert _cache_says(client, "Question 1?") == "hit"
            assert _cache_says(client, "Question 0?") == "miss"
            # Question 0 came back in; 2, the least recently used, went out.
            assert _cache_says(client, "Question 1?") == "hit"
            assert _cache_says(client, "Question 2?") == "miss"
    finally:
        stop(proc)


def test_the_semantic_index_keeps_at_most_semantic_max_entries(tmp_path: Path) -> None:
    needs_embed_extra()
    policy = _cached_policy(tmp_path)
    policy.write_text(
        policy.read_text().replace(
            "cache: {ttl: 1h}", "cache: {ttl: 1h, mode: semantic, similarity: 0.9}"
        )
    )
    port = free_port()
    args = ("--store", "none", "--semantic-max-entries", "2")
    proc = start_serve(policy, port, *args, stderr=tmp_path / "stderr")
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        with client:
            first = "What is the capital of France?"  # the simulator answers "Paris"
            others = ["Which planet is the largest in the solar system?",
                      "How do I bake sourdough bread?"]  # fmt: skip
            assert [_cache_says(client, q) for q in (first, *others)] == ["miss"] * 3
            # A paraphrase of the last one is found in the index...
            assert _asked(client, "How can I bake a sourdough bread?")[::2] == ("hit", True)
            # ... the first was pushed out of it (indexed, this paraphrase answers "Paris")
            said, answer, _ = _asked(client, "What's France's capital city?")
            assert (said, answer) == ("miss", "I think so, but I am not certain.")
            # ... while its answer stays in the response cache, for exact repeats.
            assert _asked(client, first) == ("hit", "Paris", False)
    finally:
        stop(proc)


def test_an_answer_over_a_tenth_of_max_bytes_is_not_kept(tmp_path: Path) -> None:
    policy = _cached_policy(tmp_path)
    port = free_port()
    proc = start_serve(
        policy, port, "--store", "none", "--cache-max-bytes", "1KB", stderr=tmp_path / "stderr"
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        with client:  # an entry (the answer's JSON, its model and cost) is over 100 bytes
            assert [_cache_says(client, "Question?") for _ in range(2)] == ["miss", "miss"]
    finally:
        stop(proc)


ENTRIES = "is not a whole number above zero"
SIZE = "is not a size above zero (64MB, 512KB, 1000000)"
REDIS = (
    "bound the in-process response cache; with --state redis://... the cache lives in Redis "
    "(bound it with Redis's maxmemory)"
)
BAD = [
    (("--cache-max-entries", "0"), f"--cache-max-entries: '0' {ENTRIES}"),
    (("--cache-max-entries", "ten"), f"--cache-max-entries: 'ten' {ENTRIES}"),
    (("--cache-max-entries", "-3"), f"--cache-max-entries: '-3' {ENTRIES}"),
    (("--cache-max-bytes", "0MB"), f"--cache-max-bytes: '0MB' {SIZE}"),
    (("--cache-max-bytes", "12 parsecs"), f"--cache-max-bytes: '12 parsecs' {SIZE}"),
    (("--cache-max-bytes", "1.5MB"), f"--cache-max-bytes: '1.5MB' {SIZE}"),
    (("--state", "redis://127.0.0.1:6379/0", "--cache-max-entries", "5"),
     f"--cache-max-entries: {REDIS}"),
    (("--semantic-max-entries", "0"), f"--semantic-max-entries: '0' {ENTRIES}"),
    (("--semantic-max-entries", "many"), f"--semantic-max-entries: 'many' {ENTRIES}"),
    (("--semantic-max-entries", "-1"), f"--semantic-max-entries: '-1' {ENTRIES}"),
    (("--semantic-max-entries", "2.5"), f"--semantic-max-entries: '2.5' {ENTRIES}"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD)
def test_a_bad_cache_bound_is_refused(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    policy = _cached_policy(tmp_path)
    result = run_cli("serve", str(policy), "--store", "none", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
