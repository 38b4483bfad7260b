"""How a measured quality reads: ``0.87 ±0.03 (n=412, eval, small-2024-07-18)``.

Apart from ``intervals`` so that printing a figure (``explain``) needs no statistics library.
"""

from __future__ import annotations


def describe_quality(
    mean: float | None,
    half_width: float | None,
    n: int,
    sources: str | None = None,
    version: str | None = None,
) -> str:
    """The mean, ± half the interval, and what it rests on; what is unknown is left out."""
    if mean is None:
        return f"no data (n={n})"
    spread = "" if half_width is None else f" ±{half_width:.2f}"
    said = ", ".join([f"n={n}", *(x for x in (sources, version) if x)])
    return f"{mean:.2f}{spread} ({said})"
