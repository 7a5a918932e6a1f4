"""PNG plots of an evaluation (matplotlib, Agg backend: no display, no global pyplot state).

Each function takes what ``metrics`` / ``importance`` computed and returns the PNG's bytes;
the caller logs them as artifacts. Figures are made with ``matplotlib.figure.Figure``
directly, never through ``pyplot``, so nothing is left open between calls.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from modelship.evaluation.importance import Importance
from modelship.evaluation.metrics import Calibration

MAX_BARS = 30


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # No Software/CreationDate metadata: the same figures give the same bytes.
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def confusion_matrix_png(matrix: Sequence[Sequence[int]], labels: Sequence[Any]) -> bytes:
    n = len(labels)
    size = max(3.5, 0.6 * n + 2)
    fig = Figure(figsize=(size, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    names = [str(x) for x in labels]
    ax.set_xticks(range(n), names, rotation=45 if n > 4 else 0)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    return _png(fig)


def calibration_png(calibration: Calibration) -> bytes:
    fig = Figure(figsize=(4.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(calibration.mean_predicted, calibration.fraction_positive, marker="o", label="model")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("fraction of positives")
    ax.set_title(f"Calibration (Brier {calibration.brier_score:.3f})")
    ax.legend(loc="upper left")
    return _png(fig)


def importance_png(importances: Sequence[Importance]) -> bytes:
    shown = list(importances)[:MAX_BARS][::-1]
    fig = Figure(figsize=(6, max(2.5, 0.3 * len(shown) + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    ax.barh([i.feature for i in shown], [i.mean for i in shown], xerr=[i.std for i in shown], color="#4c72b0")
    ax.set_xlabel("score drop when shuffled")
    ax.set_title("Permutation importance")
    return _png(fig)
