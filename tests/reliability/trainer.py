"""A training script as a user writes it (the real mlflow client), for the reliability tests.

``python trainer.py EXPERIMENT CONTROL_DIR NAME PHASES STEPS BATCH``

Creates a run (the server must be up), writes ``NAME.ready`` and then, for each phase,
waits for ``go-<phase>`` in CONTROL_DIR and logs STEPS steps: per step one ``loss`` with
``log_metric`` (runs/log-metric) and BATCH metrics ``m<i>`` with ``log_metrics``
(runs/log-batch). After each phase it writes ``NAME.done-<phase>``. It counts each metric
it sent, and records the ones acknowledged (the call returned) and the calls that raised,
then ends the run and writes ``NAME.json``: ``{run_id, sent, acked: [[key, step, value]],
failed: [[key, step, error]]}``. A call that raises is not retried here: the mlflow client
has retried it already.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import mlflow


def wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.05)


def main() -> None:
    experiment, control, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    phases, steps, batch = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    mlflow.set_experiment(experiment)
    sent = 0
    acked: list[tuple[str, int, float]] = []
    failed: list[tuple[str, int, str]] = []
    with mlflow.start_run() as run:
        (control / f"{name}.ready").write_text(run.info.run_id)
        for phase in range(phases):
            wait_for(control / f"go-{phase}")
            for step in range(phase * steps, (phase + 1) * steps):
                loss = 1.0 / (step + 1)
                sent += 1
                try:
                    mlflow.log_metric("loss", loss, step=step)
                    acked.append(("loss", step, loss))
                except Exception as exc:  # noqa: BLE001 - counted, the figures say how many
                    failed.append(("loss", step, repr(exc)[:300]))
                if batch:
                    values = {f"m{i}": step * 1000.0 + i for i in range(batch)}
                    sent += batch
                    try:
                        mlflow.log_metrics(values, step=step)
                        acked += [(k, step, v) for k, v in values.items()]
                    except Exception as exc:  # noqa: BLE001
                        failed += [(k, step, repr(exc)[:300]) for k in values]
            (control / f"{name}.done-{phase}").touch()
    out = {"run_id": run.info.run_id, "sent": sent, "acked": acked, "failed": failed}
    (control / f"{name}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
