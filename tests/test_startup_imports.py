"""What a gateway loads to start: not the analysis stack (scipy, numpy), the Redis client or
bpe-openai's Python wrapper, which serving a rule-based policy with a fresh store never uses;
the compiled o200k tokenizer it does load gives the wrapper's token ids; and every command
the CLI lists (imported on use) is there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from modelroute.cli import main
from modelroute.o200k import _clean_read_only, encoder

from .conftest import ROOT
from .serve_process import post_chat, quickstart_policy, start_serve, stop, wait_ready

# Imported by commands and features a plain gateway does not run.
NOT_AT_START = ("scipy", "numpy", "redis", "opentelemetry", "bpe_openai", "jinja2", "pandas")

# What ``modelroute serve`` does before it answers, in one interpreter: the CLI module, the
# policy, the app, the lifespan's start-up (tokenizer warm-up, record writer, quality refresh
# from the store) and one prompt counted; then which of the packages above got imported.
STARTUP = """
import asyncio, json, sys
import modelroute.cli
from modelroute.features import count_tokens
from modelroute.policy import load_policy
from modelroute.serve import build_app

policy, store, spool = sys.argv[1:4]
app = build_app(load_policy(policy), store_url=store, spool_dir=spool, content="full",
                traces="off")
sent = []
async def lifespan():
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    async def receive():
        return messages.pop(0)
    async def send(message):
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            sent.append(count_tokens("What is the capital of France?"))
    await app({"type": "lifespan"}, receive, send)
asyncio.run(lifespan())
loaded = [name for name in sys.argv[4:] if name in sys.modules]
bindings = "bpe_openai._bindings" in sys.modules
print(json.dumps({"sent": sent, "loaded": loaded, "bindings": bindings}))
"""


def test_starting_a_gateway_imports_no_analysis_redis_or_tokenizer_wrapper(
    tmp_path: Path,
) -> None:
    policy, _ = quickstart_policy(tmp_path)
    argv = [sys.executable, "-c", STARTUP, str(policy), str(tmp_path / "r.db"),
            str(tmp_path / "spool"), *NOT_AT_START]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["sent"] == ["lifespan.startup.complete", 7, "lifespan.shutdown.complete"]
    assert result["loaded"] == []
    assert result["bindings"]  # the compiled tokenizer was loaded (by the warm-up)


def test_a_served_process_maps_no_numpy_or_scipy_after_answering(tmp_path: Path) -> None:
    """The real ``modelroute serve``, after start-up and a request: the shared objects it has
    mapped are the evidence (a module imported by anything would have its extension there)."""
    policy, _ = quickstart_policy(tmp_path)
    from .gateway.harness import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ("--store", str(tmp_path / "r.db"), "--spool-dir", str(tmp_path / "spool"))
    proc = start_serve(policy, port, *args, stderr=tmp_path / "stderr")
    try:
        wait_ready(base, proc)
        answer, _ = post_chat(base)
        assert answer["choices"][0]["message"]["content"]
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        stop(proc)
    assert "/bpe_openai/_bindings" in maps
    assert "/numpy/" not in maps and "/scipy/" not in maps


def test_the_compiled_tokenizer_gives_the_wrappers_token_ids() -> None:
    import bpe_openai

    wrapper = bpe_openai.get_encoding("o200k_base").encode_ordinary
    encode = encoder()
    texts = [
        "",
        "What is the capital of France?",
        "<|endoftext|> and <|endofprompt|> read as plain text",
        "a lone surrogate \ud800 in a prompt",
        "東京への行き方 👍🏽 Où est la gare ?",
        "  indented\n\n\tcode();  \r\n" * 50,
        "x" * 20_000,
    ]
    for text in texts:
        assert encode(text) == wrapper(text)
    assert len(encode(texts[1])) == 7


def test_every_listed_command_loads_under_its_name() -> None:
    with click.Context(main) as ctx:
        names = main.list_commands(ctx)
        commands = {name: main.get_command(ctx, name) for name in names}
    assert names == sorted(
        ["audit", "calibrate", "check", "compare", "drift", "eval", "explain", "export",
         "keys", "logs", "outcomes", "replay", "serve", "show", "simulate", "simulator",
         "stats", "train", "ui"]
    )  # fmt: skip
    for name, command in commands.items():
        assert command is not None and command.name == name
    with click.Context(main) as ctx:
        assert main.get_command(ctx, "no-such-command") is None


# The tokenizer, built in a fresh interpreter: how much of the extension's file stays resident.
RESIDENT = """
import json
from pathlib import Path
from modelroute.o200k import _clean_read_only, encoder
encode = encoder()
import bpe_openai._bindings as bindings  # the module encoder() loaded, not a second one
path = str(Path(bindings.__file__).resolve())
kib, ours = 0, False
for line in Path("/proc/self/smaps").read_text().splitlines():
    fields = line.split()
    if fields and "-" in fields[0] and ":" not in fields[0]:
        ours = len(fields) >= 6 and fields[5] == path
    elif ours and fields[:1] == ["Rss:"]:
        kib += int(fields[1])
print(json.dumps({"kib": kib, "ids": encode("What is the capital of France?")}))
"""


def test_the_extensions_embedded_tables_are_not_kept_resident() -> None:
    """Building the tokenizer reads ~32 MiB of the extension's read-only data; those pages
    are handed back (what stays is its code and relocated data), and it still encodes."""
    done = subprocess.run(
        [sys.executable, "-c", RESIDENT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["kib"] < 8 * 1024
    assert len(result["ids"]) == 7


def test_only_clean_read_only_mappings_of_the_file_are_released() -> None:
    smaps = "\n".join(
        [
            "7f00-7f10 r--p 00000000 fd:01 1 /lib/ext.so",  # clean: released
            "Rss:                  40 kB",
            "Anonymous:             0 kB",
            "7f10-7f20 r--p 00010000 fd:01 1 /lib/ext.so",  # relocated (copied on write)
            "Rss:                   8 kB",
            "Anonymous:             8 kB",
            "7f20-7f30 rw-p 00020000 fd:01 1 /lib/ext.so",  # writable
            "Rss:                   4 kB",
            "Anonymous:             0 kB",
            "7f30-7f40 r--p 00000000 fd:01 2 /lib/other.so",  # another file
            "Rss:                  12 kB",
            "Anonymous:             0 kB",
            "7f40-7f50 r--p 00000000 00:00 0 ",  # anonymous mapping
            "Rss:                   4 kB",
            "Anonymous:             4 kB",
        ]
    )
    assert _clean_read_only(smaps, "/lib/ext.so") == [(0x7F00, 0x7F10, 40)]
