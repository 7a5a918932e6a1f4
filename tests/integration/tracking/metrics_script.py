"""A plain MLflow script that only logs metrics, for the fault tests.

``python metrics_script.py EXPERIMENT STEPS PAUSE_FILE``: logs ``loss`` at steps 0..STEPS-1;
before step STEPS//2 it prints ``PAUSED`` and waits until PAUSE_FILE is gone; after the
last metric it prints ``LOGGED`` and waits until PAUSE_FILE exists again, removed, so that
the test can bring the server back before the run ends.
"""

from __future__ import annotations

import os
import sys
import time

import mlflow


def wait_while(cond) -> None:  # type: ignore[no-untyped-def]
    while cond():
        time.sleep(0.05)


def main() -> None:
    experiment, steps, pause_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        print(f"RUN_ID={run.info.run_id}", flush=True)
        mlflow.log_param("steps", steps)
        for step in range(steps):
            if step == steps // 2:
                print("PAUSED", flush=True)
                wait_while(lambda: os.path.exists(pause_file))
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("phase", "done")
        print("LOGGED", flush=True)
        release = pause_file + ".release"
        wait_while(lambda: not os.path.exists(release))
    print("ENDED", flush=True)


if __name__ == "__main__":
    main()
