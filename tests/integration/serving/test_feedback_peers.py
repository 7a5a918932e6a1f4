"""Feedback behind a Service, on real model servers (``modelship serve`` on loopback): each
server names both as its peers (``MODELSHIP_FEEDBACK_PEERS``, as a ModelDeployment's pods
get the addresses of its headless Service), and outcomes sent to either one count at the
server that made the prediction — once, with the summed reply, the ids no server knew
named, and the ids of a server that is down refused as ``unreachable``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sklearn.datasets import load_iris
from tests.integration.serving.test_feedback import models, one  # noqa: F401 - the fixture and a helper
from tests.local_servers import free_port, stop

from modelship.serving.feedback import instance_hint
from modelship.serving.peers import FORWARDED_HEADER, Forwarded, Peers, Pending


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
    metrics = httpx.get(f"{servers['blue'].url}/metrics", timeout=30).text
    labels = 'model="iris",result="{}",variant="blue",version="1"'
    assert f"modelship_feedback_forwarded_total{{{labels.format('accepted')}}} 30.0" in metrics
    assert f"modelship_feedback_forwarded_total{{{labels.format('unknown')}}} 1.0" in metrics
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

    # blue's own ids that it has forgotten (or never made) are not asked of anyone
    forgotten = f"{figures(servers['blue'].url)['instance']}-00000000000f4240"
    asked = post(servers["blue"].url, [{"requestId": forgotten, "label": 0}])
    assert asked["errors"][0]["reason"] == "unknown" and asked["peers"]["asked"] == 0, asked

    # green goes away: its ids sent to blue cannot be judged now, and the reply says to send them again
    stop(servers["green"].proc)
    reply = post(servers["blue"].url, [{"requestId": fresh, "label": 0}, {"requestId": "nobody-2", "reward": 1.0}])
    assert reply["accepted"] == 0 and [e["reason"] for e in reply["errors"]] == ["unreachable"] * 2, reply
    assert f"127.0.0.1:{ports['green']}" in reply["peers"]["failed"][0]
    assert "send it again" in reply["errors"][0]["message"]
    assert figures(servers["blue"].url)["rejected"]["unreachable"] == 2


class ControlledDns(Peers):
    """Peers whose name resolves to what the test says (the first answers in turn, then the
    last for good): a headless Service that gains a pod, without a DNS server."""

    def __init__(self, answers: list[list[str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers, self.lookups = answers, 0

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_a_pod_new_to_the_service_is_found_before_the_cached_addresses_expire(
    models: dict[str, Path],  # noqa: F811 - the fixture
    modelship_server: Any,
) -> None:
    server = modelship_server(str(models["good"]), "--model-name", "iris", "--variant", "green")
    X, _ = load_iris(return_X_y=True)
    rid, _ = one(server.url, X[0].tolist())  # a server-made id: it names its instance
    port = int(server.url.rsplit(":", 1)[1])
    wanted = [Pending(0, {"requestId": rid, "label": 0}, instance_hint(rid))]

    async def run() -> tuple[Forwarded, Forwarded, int]:
        peers = ControlledDns(
            [[], ["127.0.0.1"]],
            targets=[("iris--peers.test.svc", port)],
            own_instance="aaaaaaaaaaaa",
            own_addresses=set(),
            timeout_s=30,
            deadline_s=60,
            max_peers=4,
            concurrency=1,
        )
        try:
            first = await peers.forward(wanted)  # DNS has no peer yet; its answer was fresh: no second look
            second = await peers.forward(wanted)  # cached (no peer), so DNS is asked again: the pod is there
            return first, second, peers.lookups
        finally:
            await peers.close()

    first, second, lookups = asyncio.run(run())
    assert (first.asked, first.resolved) == (0, {}) and not first.incomplete
    assert (second.asked, second.resolved, second.answered) == (1, {0: None}, {instance_hint(rid)})
    assert lookups == 2
    assert figures(server.url)["outcomes"]["binary"]["n"] == 1
