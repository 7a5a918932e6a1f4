"""Feedback behind a Service, on real model servers (``modelship serve`` on loopback): each
server names both as its peers (``MODELSHIP_FEEDBACK_PEERS``, as a ModelDeployment's pods
get the addresses of its headless Service), and outcomes sent to either one count at the
server that made the prediction — once, with the summed reply, the ids no server knew
named, and the ids of a server that is down refused as ``unreachable``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sklearn.datasets import load_iris
from tests.integration.serving.test_feedback import models, one  # noqa: F401 - the fixture and a helper
from tests.local_servers import free_port, stop

from modelship.serving.peers import FORWARDED_HEADER


def post(url: str, outcomes: list[dict[str, Any]], **headers: str) -> dict[str, Any]:
    r = httpx.post(f"{url}/feedback", json={"outcomes": outcomes}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def figures(url: str) -> dict[str, Any]:
    report: dict[str, Any] = httpx.get(f"{url}/feedback", timeout=30).json()
    return report


def test_outcomes_sent_to_any_server_count_where_the_prediction_was_made(
    models: dict[str, Path],  # noqa: F811 - the fixture
    modelship_server: Any,
) -> None:
    ports = {"blue": free_port(), "green": free_port()}
    env = {"MODELSHIP_FEEDBACK_PEERS": ",".join(f"127.0.0.1:{p}" for p in ports.values())}
    servers = {
        variant: modelship_server(
            str(models["good" if variant == "green" else "bad"]),
            "--model-name",
            "iris",
            "--variant",
            variant,
            env=env,
            port=port,
        )
        for variant, port in ports.items()
    }
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(4).permutation(len(X))[:60]
    # as kube-proxy would: every other prediction to the other server; a third of the clients name their ids
    answered = []
    for n, i in enumerate(order):
        variant = ("blue", "green")[n % 2]
        rid, pred = one(servers[variant].url, X[i].tolist(), f"client-{n}" if n % 3 == 0 else None)
        answered.append((variant, rid, pred, int(y[i])))
    outcomes = [{"requestId": rid, "label": label} for _, rid, _, label in answered]
    outcomes.append({"requestId": "nobody-1", "label": 0})

    # all to blue: green's are forwarded (server ids straight to it, client ids asked of it)
    reply = post(servers["blue"].url, outcomes)
    assert reply["accepted"] == 60 and reply["rejected"] == 1, reply
    (err,) = reply["errors"]
    assert (err["index"], err["requestId"], err["reason"]) == (60, "nobody-1", "unknown")
    assert "every pod of the deployment" in err["message"] and "1 peer" in err["message"]
    assert reply["peers"] == {"asked": 1, "failed": []}
    for variant, server in servers.items():
        mine = [(pred, label) for v, _, pred, label in answered if v == variant]
        report = figures(server.url)
        correct = sum(1 for pred, label in mine if pred == label)
        assert report["outcomes"]["binary"]["n"] == len(mine) == 30
        assert report["outcomes"]["binary"]["sum"] == correct
        # the id no one knew is counted once, by the server the client asked; a peer asked counts none
        assert report["rejected"]["unknown"] == (1 if variant == "blue" else 0), report

    # the same outcomes again, to green this time: every one a duplicate, counted once each where it lives
    again = post(servers["green"].url, outcomes[:60])
    assert again["accepted"] == 0 and {e["reason"] for e in again["errors"]} == {"duplicate"}
    assert [e["index"] for e in again["errors"]] == list(range(60))
    assert figures(servers["blue"].url)["rejected"]["duplicate"] == 30
    assert figures(servers["green"].url)["rejected"]["duplicate"] == 30

    # a forwarded request is answered by what this server knows, never forwarded again
    fresh, _ = one(servers["green"].url, X[0].tolist(), "client-fresh")
    hop = post(servers["blue"].url, [{"requestId": "client-fresh", "label": 0}], **{FORWARDED_HEADER: "0123456789ab"})
    assert hop["accepted"] == 0 and hop["errors"][0]["reason"] == "unknown" and "peers" not in hop
    assert hop["instance"] == figures(servers["blue"].url)["instance"]
    assert figures(servers["blue"].url)["rejected"]["unknown"] == 1  # left to the asking pod to count

    # green goes away: its ids sent to blue cannot be judged now, and the reply says to send them again
    stop(servers["green"].proc)
    reply = post(servers["blue"].url, [{"requestId": fresh, "label": 0}, {"requestId": "nobody-2", "reward": 1.0}])
    assert reply["accepted"] == 0 and [e["reason"] for e in reply["errors"]] == ["unreachable"] * 2, reply
    assert f"127.0.0.1:{ports['green']}" in reply["peers"]["failed"][0]
    assert "send it again" in reply["errors"][0]["message"]
    assert figures(servers["blue"].url)["rejected"]["unreachable"] == 2
