"""The traffic ``synth_store.py`` generates: the policy, the request templates and the measured
quality behind the outcomes. Plain data, read by the generator and by the benchmarks and tests
that check what an analysis finds in it.

The mix (shares of requests):

- ``support`` (cheapest_qualified, min_quality 0.85, models mini/haiku/sonnet), addressed by
  name, with two task labels: ``ticket-triage`` (14%) and ``refund-check`` (6%). mini's prior
  (0.78) is below the threshold, so haiku serves; shadow outcomes measure mini at 0.93 on
  triage (qualified) and 0.80 on refunds (not).
- ``extract`` (fixed gpt4o, sonnet as fallback), unlabelled invoice extraction (20%); shadow
  outcomes measure mini at 0.96: over-provisioned.
- ``summarize`` (fixed sonnet), unlabelled, two templates (call transcripts 6%, email threads
  4%); judged shadow outcomes put haiku and mini below the threshold on calls.
- ``classify`` (cascade mini -> gpt4o on logprobs), task label ``sentiment`` (12%), about a
  fifth of requests escalated.
- ``code`` (cheapest_qualified with a latency budget, matched by metadata ``app: ide``),
  unlabelled, 20 prompt templates (10%).
- ``chat`` (the default route, fixed gpt4o then sonnet), unlabelled, 30 question templates
  (28%), streamed; feedback outcomes.

gpt4o's provider-reported version changes from ``gpt-4o-2024-05-13`` to ``gpt-4o-2024-08-06``
at 60% of the time span (``VERSION_SWITCH_AT``); its evaluated quality on ``extract`` drops
from 0.97 to 0.91 with it. For 0.5% of the span (``INCIDENT``) haiku's circuit is open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SIM_URL = "http://127.0.0.1:9/v1"  # never contacted: the records are generated, not served

POLICY: dict[str, Any] = {
    "version": "synthetic-1",
    "defaults": {"route": "chat", "quality": {"min_samples": 30}},
    "models": {
        "mini": {
            "provider": "openai", "base_url": SIM_URL, "model_id": "gpt-4o-mini",
            "allow_floating": True, "prices": {"input": 0.15, "output": 0.6},
            "context_window": 128000, "capabilities": ["tools", "json_mode", "logprobs"],
            "latency": {"p50_ms": 450, "p95_ms": 1100},
            "quality": {"support": 0.78, "extract": 0.7, "summarize": 0.6, "classify": 0.8,
                        "code": 0.6, "chat": 0.7},
        },
        "haiku": {
            "provider": "anthropic", "base_url": SIM_URL, "model_id": "claude-3-5-haiku",
            "allow_floating": True, "prices": {"input": 0.8, "output": 4.0},
            "context_window": 200000, "capabilities": ["tools"],
            "latency": {"p50_ms": 600, "p95_ms": 1500},
            "quality": {"support": 0.88, "summarize": 0.8, "code": 0.75, "chat": 0.85},
        },
        "sonnet": {
            "provider": "anthropic", "base_url": SIM_URL, "model_id": "claude-3-5-sonnet",
            "allow_floating": True, "prices": {"input": 3.0, "output": 15.0},
            "context_window": 200000, "capabilities": ["tools"],
            "latency": {"p50_ms": 1200, "p95_ms": 3200},
            "quality": {"support": 0.95, "extract": 0.95, "summarize": 0.93, "code": 0.92,
                        "chat": 0.93},
        },
        "gpt4o": {
            "provider": "openai", "base_url": SIM_URL, "model_id": "gpt-4o",
            "allow_floating": True, "prices": {"input": 2.5, "output": 10.0},
            "context_window": 128000, "capabilities": ["tools", "json_mode", "logprobs"],
            "latency": {"p50_ms": 900, "p95_ms": 2600},
            "quality": {"support": 0.94, "extract": 0.96, "summarize": 0.9, "classify": 0.95,
                        "code": 0.88, "chat": 0.92},
        },
    },
    "routes": {
        "support": {
            "constraints": {"min_quality": 0.85},
            "strategy": {"kind": "cheapest_qualified", "models": ["mini", "haiku", "sonnet"]},
        },
        "extract": {
            "constraints": {"min_quality": 0.9},
            "strategy": {"kind": "fixed", "models": ["gpt4o"]},
            "fallbacks": ["sonnet"],
        },
        "summarize": {
            "constraints": {"min_quality": 0.85},
            "strategy": {"kind": "fixed", "models": ["sonnet"]},
            "fallbacks": ["gpt4o"],
        },
        "classify": {
            "constraints": {"min_quality": 0.9},
            "strategy": {
                "kind": "cascade",
                "tiers": [["mini"], ["gpt4o"]],
                "confidence": {"signal": "logprobs", "threshold": 0.7},
            },
        },
        "code": {
            "match": {"metadata": {"app": ["ide"]}},
            "constraints": {"min_quality": 0.8, "max_latency_ms": 4000},
            "strategy": {"kind": "cheapest_qualified", "models": ["haiku", "sonnet", "gpt4o"]},
        },
        "chat": {
            "constraints": {"min_quality": 0.85},
            "strategy": {"kind": "fixed", "models": ["gpt4o", "sonnet"]},
        },
    },
}  # fmt: skip

# What each model's provider reports having answered; gpt4o's changes part way.
REPORTED: dict[str, tuple[str, ...]] = {
    "mini": ("gpt-4o-mini-2024-07-18",),
    "haiku": ("claude-3-5-haiku-20241022",),
    "sonnet": ("claude-3-5-sonnet-20241022",),
    "gpt4o": ("gpt-4o-2024-05-13", "gpt-4o-2024-08-06"),
}
FINGERPRINTS: dict[str, tuple[str | None, ...]] = {
    "mini": ("fp_0ba0d124f1",),
    "haiku": (None,),
    "sonnet": (None,),
    "gpt4o": ("fp_3aa7262c27", "fp_9f2bfdaa89"),
}
VERSION_SWITCH_AT = 0.6  # share of the time span at which gpt4o's version changes
INCIDENT = (0.40, 0.405)  # share of the span during which haiku's circuit is open
EPOCHS = 4  # the rolling statistics the planner read change this many times

# --- prompts -------------------------------------------------------------------------------

FIRST = ("ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jo", "kofi")
LAST = ("smith", "garcia", "kim", "novak", "okafor", "rossi", "tanaka", "weber", "yilmaz")
DOMAINS = ("example.com", "mail.example.org", "corp.example.net", "shop.example")
TICKETS = (
    "I was charged twice for my subscription this month",
    "The dashboard has been down since this morning",
    "Please add SSO support for our team",
    "I cannot log in after resetting my password",
    "Your API returns 502 errors for every request",
    "How do I change the billing address on my invoices",
    "We need an export of all our data before we cancel",
    "The mobile app crashes when I open settings",
    "My invoice shows the wrong VAT rate",
    "Can you raise our rate limit for the launch next week",
)
REFUNDS = (
    "I never used the pro plan, please refund it",
    "I cancelled within a week but was still billed",
    "The service was down for two days, I want my money back",
    "I upgraded by mistake",
    "I was billed after my trial ended without a reminder",
)
REVIEWS = (
    "Works exactly as described, would buy again",
    "Stopped working after two days, very disappointed",
    "It is fine, nothing special",
    "Battery life is amazing and setup took a minute",
    "Arrived late and the box was damaged",
    "Decent value for the price but the manual is confusing",
)
SENTENCES = (
    "The customer asked about the renewal terms and the new pricing.",
    "They mentioned that the integration with their CRM keeps timing out.",
    "We agreed to schedule a follow-up with the technical team.",
    "Their finance department needs the invoices in a different format.",
    "The pilot went well and they want to extend it to two more teams.",
    "There were concerns about data residency in the EU.",
    "They will send the signed order form by the end of the week.",
    "Support response times were praised during the last quarter.",
)
SUBJECTS = ("Renewal quote", "Onboarding plan", "Outage follow-up", "Contract changes")

CHAT_STEMS = (
    "How do I reset the password for account {int}?",
    "What is the status of order {order}?",
    "Can I upgrade plan {int} before {date}?",
    "Why was I charged {amount} on {date}?",
    "How many seats are left on team {int}?",
    "Please cancel subscription {order}.",
    "Is there an outage in region eu-{int}?",
    "How do I add a user to workspace {int}?",
    "Where can I download invoice {invoice}?",
    "What does error code {int} mean?",
    "Can you extend my trial until {date}?",
    "How do I export the reports from {date}?",
    "Is ticket {int} resolved yet?",
    "How do I enable two-factor authentication for {email}?",
    "What are your opening hours on {date}?",
    "How do I change the owner of project {int}?",
    "Can I get a discount for {int} licences?",
    "Where is the API key for app {int}?",
    "How do I delete workspace {int}?",
    "Why is my upload of {int} MB failing?",
    "Can you send the receipt for {order} to {email}?",
    "How long does shipping to zone {int} take?",
    "How do I merge accounts {int} and {int}?",
    "What changed in release {int}?",
    "Does plan {int} include phone support?",
    "How do I rotate the webhook secret for endpoint {int}?",
    "Can I move my booking from {date} to {date}?",
    "Please update my address for order {order}.",
    "Which regions support data residency for tenant {int}?",
    "How do I set up SAML for domain {email}?",
)
CODE_LANGUAGES = ("Python", "TypeScript", "Go", "Rust")
CODE_ACTIONS = (
    "parses an ISO 8601 date and returns the weekday",
    "deduplicates a list while keeping the order",
    "retries an HTTP request with exponential backoff",
    "validates an email address",
    "computes the median of a list of numbers",
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One request template. ``user`` holds ``{kind}`` fields filled per request (see
    ``synth_store.FIELD_KINDS``); everything else in it is fixed text."""

    name: str
    weight: float  # share of requests
    requested: str  # the body's "model"
    system: str
    user: str
    task: str | None = None  # the task label the request carries
    metadata: dict[str, str] = field(default_factory=dict)
    output_tokens: int = 100  # median answer length
    answers: tuple[str, ...] = ("ok",)
    streamed: bool = False


def scenarios() -> list[Scenario]:
    out = [
        Scenario(
            "ticket-triage", 0.14, "support",
            "You are a support triage assistant for Acme Cloud. Answer with exactly one label: "
            "billing, outage, account, feature_request or other.",
            'Ticket #{int} from {email} on {date}: "{ticket}"',
            task="ticket-triage", output_tokens=3,
            answers=("billing", "outage", "account", "feature_request", "other"),
        ),
        Scenario(
            "refund-check", 0.06, "support",
            "You decide whether a refund request meets Acme's policy (30 days, unused plan). "
            "Reply APPROVE or DENY and one sentence of reason.",
            'Order {order} placed {date} for {amount}; the customer ({email}) writes: "{refund}"',
            task="refund-check", output_tokens=30,
            answers=("APPROVE: within 30 days and unused.", "DENY: outside the 30-day window."),
        ),
        Scenario(
            "extract-invoice", 0.20, "extract",
            "Extract invoice_number, issue_date, total and currency from the document. Reply "
            "with JSON only.",
            "Invoice {invoice}\nIssued: {date}\nBill to: {email}\nTotal due: {amount} EUR\n"
            "Pay at https://pay.acme.example/i/{uuid}",
            output_tokens=45,
            answers=('{"invoice_number": "INV-2024-0042", "issue_date": "2024-05-02", '
                     '"total": 120.5, "currency": "EUR"}',),
        ),
        Scenario(
            "summarize-call", 0.06, "summarize",
            "Summarise the customer call transcript below in three bullet points for the "
            "account manager.",
            "Call {int} on {date} with {email}, {few} minutes:\n\n{paragraph}",
            output_tokens=90,
            answers=("- Renewal terms discussed\n- CRM timeouts to fix\n- Follow-up booked",),
        ),
        Scenario(
            "summarize-email", 0.04, "summarize",
            "Summarise this email thread in two sentences and list the open action items.",
            'Thread "{subject}" ({few} messages, last on {date}):\n\n{paragraph}',
            output_tokens=70,
            answers=("The customer wants a new quote. Action: send it by Friday.",),
        ),
        Scenario(
            "sentiment", 0.12, "classify",
            "Classify the sentiment of the product review as positive, negative or neutral. "
            "Answer with one word.",
            'Review of product SKU-{int} ({stars} stars): "{review}"',
            task="sentiment", output_tokens=2, answers=("positive", "negative", "neutral"),
        ),
    ]  # fmt: skip
    code_weight = 0.10 / (len(CODE_LANGUAGES) * len(CODE_ACTIONS))
    for lang in CODE_LANGUAGES:
        for i, action in enumerate(CODE_ACTIONS):
            out.append(
                Scenario(
                    f"code-{lang.lower()}-{i}", code_weight, "auto",
                    "You are a coding assistant. Reply with code only, no explanation.",
                    f"Write a {lang} function that {action}. Name it {{fname}}.",
                    metadata={"app": "ide"}, output_tokens=160,
                    answers=("def solve(items):\n    return sorted(set(items))\n",),
                )
            )  # fmt: skip
    chat_weight = 0.28 / len(CHAT_STEMS)
    for i, stem in enumerate(CHAT_STEMS):
        out.append(
            Scenario(
                f"chat-{i:02d}", chat_weight, "auto",
                "You are Acme's helpful assistant. Be concise and friendly.",
                stem, output_tokens=120, streamed=True,
                answers=("You can do that from Settings > Account. Let me know if it helps!",),
            )
        )  # fmt: skip
    return out


# --- measured quality ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shadow:
    """A route's shadow comparison: a share of its successful requests answered again by
    ``model`` and scored (agreement: 0 or 1; judge: a graded score around ``quality``)."""

    scenario: str
    model: str
    quality: float
    sample: float
    grader: str = "agreement"


SHADOWS: tuple[Shadow, ...] = (
    Shadow("ticket-triage", "mini", 0.93, 0.01),
    Shadow("refund-check", "mini", 0.80, 0.01),
    Shadow("extract-invoice", "mini", 0.96, 0.01),
    Shadow("summarize-call", "haiku", 0.74, 0.01, "judge:sonnet"),
    Shadow("summarize-call", "mini", 0.58, 0.01, "judge:sonnet"),
    Shadow("summarize-email", "haiku", 0.90, 0.01, "judge:sonnet"),
    Shadow("summarize-email", "mini", 0.83, 0.01, "judge:sonnet"),
)

# Evaluation runs (weekly, ``EVAL_PROMPTS`` prompts each): (route, model) -> quality per
# gpt4o version (before, after the switch); other models have one figure.
EVAL_PROMPTS = 150
EVALS: dict[tuple[str, str], tuple[float, ...]] = {
    ("extract", "gpt4o"): (0.97, 0.91),
    ("extract", "mini"): (0.95,),
    ("classify", "mini"): (0.86,),
    ("classify", "gpt4o"): (0.95, 0.95),
}
# Feedback (thumbs up or down) on a share of chat answers.
FEEDBACK_SHARE = 0.003
FEEDBACK_QUALITY = {"gpt4o": 0.88, "sonnet": 0.9}
