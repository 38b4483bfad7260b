"""What to run when the evidence is too thin: an evaluation of the route's cheaper models, or a
shadow comparison on the route, sized to collect the outcomes a verdict needs in about a week.
"""

from __future__ import annotations

import math

import yaml

from modelroute.analysis.audit_model import Candidate

WEEK_DAYS = 7
_MIN_SAMPLE = 0.001
_SHADOW_MARGIN = 1.5  # the budget leaves room for judging and for busier days


def _round_up(x: float, digits: int = 2) -> float:
    """Up, to ``digits`` significant digits: a sample rate or budget never rounds below need."""
    if x <= 0:
        return 0.0
    scale = 10 ** (digits - 1 - math.floor(math.log10(x)))
    return float(math.ceil(x * scale) / scale)


def eval_command(route: str, models: list[str], policy_path: str | None, store_url: str) -> str:
    return (
        f"modelroute eval TASK.jsonl --policy {policy_path or 'POLICY.yaml'} --route {route} "
        f"--models {','.join(models)} --store {store_url}"
        "   # TASK.jsonl: this task's prompts with reference answers"
    )


def shadow_block(route: str, unsure: list[Candidate], per_day: float, needed: int) -> str:
    """A ``shadow:`` block for ``route`` that would compare ``unsure`` models with what the
    route answers on enough requests (``needed`` outcomes each) within a week."""
    rate = max(_MIN_SAMPLE, min(1.0, needed / max(per_day * WEEK_DAYS, 1.0)))
    rate = min(1.0, _round_up(rate))
    spend = sum(c.cost_per_request for c in unsure) * rate * per_day * _SHADOW_MARGIN
    block = {
        "routes": {
            route: {
                "shadow": {
                    "models": [c.model for c in unsure],
                    "sample": rate,
                    "judge": "agreement",
                    "max_usd_per_day": max(1.0, _round_up(spend)),
                }
            }
        }
    }
    text = yaml.safe_dump(block, sort_keys=False, default_flow_style=False)
    return text + "# judge: MODEL instead of agreement when answers are free-form text\n"


def advice(
    route: str | None,
    unsure: list[Candidate],
    per_day: float,
    policy_path: str | None,
    store_url: str,
) -> list[str]:
    """The commands (an evaluation, a shadow block) that would measure ``unsure`` models."""
    if not unsure:
        return []
    route = route or "ROUTE"  # an imported log's requests were not routed by a policy
    needed = max(c.evidence.needed for c in unsure)
    have = ", ".join(
        f"{c.model}: {c.evidence.describe()}, about {c.evidence.needed} needed" for c in unsure
    )
    models = [c.model for c in unsure]
    return [
        f"not enough evidence ({have})",
        eval_command(route, models, policy_path, store_url),
        "or shadow the route's live traffic (add to the policy):\n"
        + shadow_block(route, unsure, per_day, needed),
    ]
