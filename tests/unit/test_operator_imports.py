"""What ``modelship operator`` loads at start: none of the heavy libraries only some paths need.

optuna (an Experiment's search), numpy (a drift PSI), pandas and pyarrow (a model's
signature) are imported where they are used; each cost the operator's RSS at start on
every cluster (optuna and numpy together ~20 MB of an idle 105 MB), used or not.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("optuna", "numpy", "pandas", "pyarrow", "sklearn", "scipy", "mlflow")


def test_the_operator_starts_without_the_heavy_libraries() -> None:
    code = (
        "import sys, modelship.controllers.main as m, kopf\n"
        "m.register_handlers(kopf.OperatorRegistry())\n"
        f"print(','.join(n for n in {HEAVY!r} if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "", f"imported at the operator's start: {out.stdout.strip()}"
