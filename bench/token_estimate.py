"""The planner's prompt-token estimate against exact o200k_base counts, on real prompts.

For every prompt in ../shared/data/<dataset>/prompts.jsonl.gz (or DATA=...), the request a
router would see (one user message holding the prompt) goes through ``request_context``, the
function the gateway and ``Router.chat`` call, and its ``prompt_tokens`` is compared with the
exact o200k_base count of the prompt's text by bpe-openai's own ``Encoding.encode_ordinary``
(the package's Python path, not modelroute's loader of its compiled tokenizer). The dataset's
``input_tokens`` column (the same count, made when the data was built) is checked too.

What the estimate adds to the text's tokens: ``_PER_MESSAGE`` (4) per message for the role and
separators, ``_PER_IMAGE`` (765) per image part, the tools' JSON; a text longer than
``_EXACT_CHARS`` (16,000) is counted exactly up to there and extrapolated at that part's
tokens per character. The report gives the relative error, (estimate - exact) / exact, of the
whole estimate and of its text part alone: mean (signed and absolute), median, p95 and max of
the absolute value, per dataset and over all prompts. Nothing is downloaded.

    PYTHONPATH=src .venv/bin/python bench/token_estimate.py
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import bpe_openai

from modelroute.features import _EXACT_CHARS, _PER_MESSAGE, request_context

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("DATA", HERE.parent.parent / "shared" / "data"))


def prompts(dataset: Path) -> Iterator[tuple[str, str]]:
    with gzip.open(dataset / "prompts.jsonl.gz", "rt") as f:
        for line in f:
            row = json.loads(line)
            yield row["id"], row["prompt"]


def dataset_counts(dataset: Path) -> dict[str, int]:
    """The data's own o200k count per prompt (``input_tokens``, the same on every row)."""
    counts: dict[str, int] = {}
    with gzip.open(dataset / "outcomes.csv.gz", "rt", newline="") as f:
        for row in csv.DictReader(f):
            counts.setdefault(row["prompt_id"], int(row["input_tokens"]))
    return counts


def describe(errors: list[float]) -> str:
    absolute = sorted(abs(e) for e in errors)
    p95 = absolute[min(len(absolute) - 1, int(0.95 * len(absolute)))]
    return (
        f"mean {statistics.fmean(errors):+.2%}, mean |e| {statistics.fmean(absolute):.2%}, "
        f"median |e| {statistics.median(absolute):.2%}, p95 |e| {p95:.2%}, "
        f"max |e| {absolute[-1]:.2%}"
    )


def main() -> int:
    encode = bpe_openai.get_encoding("o200k_base").encode_ordinary
    datasets = sorted(p for p in DATA.iterdir() if (p / "prompts.jsonl.gz").exists())
    if not datasets:
        sys.exit(f"no prompts under {DATA} (set DATA=...)")
    whole_all: list[float] = []
    text_all: list[float] = []
    print("estimate: request_context(one user message).prompt_tokens; exact: o200k of the text")
    print(f"it adds {_PER_MESSAGE} per message; texts over {_EXACT_CHARS:,} chars are extrapolated")
    for dataset in datasets:
        recorded = dataset_counts(dataset)
        whole: list[float] = []
        text: list[float] = []
        long_texts = mismatched = 0
        for prompt_id, prompt in prompts(dataset):
            exact = len(encode(prompt))
            body = {"model": "m", "messages": [{"role": "user", "content": prompt}]}
            estimate = request_context(body, {}).prompt_tokens
            whole.append((estimate - exact) / exact)
            text.append((estimate - _PER_MESSAGE - exact) / exact)
            long_texts += len(prompt) > _EXACT_CHARS
            mismatched += recorded.get(prompt_id, exact) != exact
        whole_all += whole
        text_all += text
        print(f"\n{dataset.name}: {len(whole):,} prompts, {long_texts} over {_EXACT_CHARS:,} chars")
        print(f"  exact count differs from the data's input_tokens on {mismatched}")
        print(f"  whole estimate: {describe(whole)}")
        print(f"  text part:      {describe(text)}")
    print(f"\nall {len(whole_all):,} prompts")
    print(f"  whole estimate: {describe(whole_all)}")
    print(f"  text part:      {describe(text_all)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
