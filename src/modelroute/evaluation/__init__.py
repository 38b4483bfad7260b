"""Evaluating models: labelled datasets sent through the engine, graded, kept as outcomes.

``load_jsonl`` / ``load_neutral`` read datasets, ``Evaluation`` runs one (resumably, within a
budget), ``OutcomeImport`` brings in a neutral dataset's recorded outcomes, ``Tally`` and
``render_report`` give quality with intervals, and ``compare_versions`` sets two
provider-reported versions of a model side by side.
"""

from modelroute.evaluation.compare import compare_versions, render_comparison
from modelroute.evaluation.dataset import Dataset, DatasetError, EvalItem, load_jsonl
from modelroute.evaluation.neutral import OutcomeImport, is_neutral, load_neutral
from modelroute.evaluation.policy_view import evaluation_policy, route_models
from modelroute.evaluation.report import Tally, render_report
from modelroute.evaluation.runner import CostEstimate, Evaluation, Progress, RunSummary

__all__ = [
    "CostEstimate",
    "Dataset",
    "DatasetError",
    "EvalItem",
    "Evaluation",
    "OutcomeImport",
    "Progress",
    "RunSummary",
    "Tally",
    "compare_versions",
    "evaluation_policy",
    "is_neutral",
    "load_jsonl",
    "load_neutral",
    "render_comparison",
    "render_report",
    "route_models",
]
