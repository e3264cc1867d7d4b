"""Charts of evaluation reports: per-dimension scores of one or several models as a radar (or bar) PNG.

A radar needs at least three axes; with fewer dimensions the chart falls back to grouped bars. Uses
matplotlib's Agg backend, so it works on servers without a display; returns PNG bytes, which callers
write wherever they like (``storage.write_bytes``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from shipyard.errors import InvalidArgument
from shipyard.evaluation.report import EvaluationReport
from shipyard.evaluation.types import Dimension

__all__ = ["dimension_chart"]

_ORDER = [d.value for d in Dimension]


def dimension_chart(
    reports: Sequence[EvaluationReport],
    *,
    labels: Sequence[str] | None = None,
    kind: str = "auto",
    title: str = "Scores by capability dimension",
) -> bytes:
    """PNG bytes of the per-dimension scores of ``reports`` (``kind``: ``radar``, ``bar`` or ``auto``)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot's import
    import matplotlib.pyplot as plt

    if not reports:
        raise InvalidArgument.field("reports", "need at least one report to chart")
    names = list(labels) if labels is not None else [r.model for r in reports]
    if len(names) != len(reports):
        raise InvalidArgument.field("labels", f"{len(names)} labels for {len(reports)} reports")
    dims = [d for d in _ORDER if any(d in r.dimensions for r in reports)]
    if not dims:
        raise InvalidArgument.field(
            "reports", "no report has a dimension score (only judged or failed tasks?)"
        )
    if kind not in ("auto", "radar", "bar"):
        raise InvalidArgument.field("kind", f"must be radar, bar or auto, not {kind!r}")
    radar = kind == "radar" or (kind == "auto" and len(dims) >= 3)
    if radar and len(dims) < 3:
        raise InvalidArgument.field("kind", f"a radar needs at least 3 dimensions, the reports have {dims}")

    values = [[float(r.dimensions.get(d, 0.0)) for d in dims] for r in reports]
    if radar:
        fig = plt.figure(figsize=(6, 6))
        ax = fig.add_subplot(projection="polar")
        angles = [2 * math.pi * i / len(dims) for i in range(len(dims))]
        for name, row in zip(names, values, strict=True):
            ax.plot([*angles, angles[0]], [*row, row[0]], label=name)
            ax.fill([*angles, angles[0]], [*row, row[0]], alpha=0.15)
        ax.set_xticks(angles, dims)
        ax.set_ylim(0, 1)
    else:
        fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(dims) * len(reports)), 4))
        width = 0.8 / len(reports)
        for i, (name, row) in enumerate(zip(names, values, strict=True)):
            ax.bar([x + i * width for x in range(len(dims))], row, width, label=name)
        ax.set_xticks([x + width * (len(reports) - 1) / 2 for x in range(len(dims))], dims)
        ax.set_ylim(0, 1)
        ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
