"""The test bed is a real cluster: pods really run, Jobs finish, controllers collect garbage."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

from tests.cluster.bed import Bed
from tests.cluster.kubeapi import KubeApi, path_for
from tests.conftest import wait
from tests.e2e.objects import container, deployment, job, job_condition

# The bed's own tests run bare pods (no securityContext): their namespaces enforce no Pod
# Security level. Modelship's pods run in namespaces that enforce restricted (tests/conftest.py).
POD_SECURITY = None

HTTP_SERVER = ["python", "-m", "http.server", "8000", "--bind", "0.0.0.0"]


def _pods(kube: KubeApi, ns: str, selector: str) -> list[dict]:
    return kube.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"]


def test_deployment_pod_becomes_ready_and_answers_on_its_pod_ip(kube: KubeApi, namespace: str, bed: Bed) -> None:
    web = container(
        "web",
        HTTP_SERVER,
        ports=[{"containerPort": 8000, "name": "http"}],
        readinessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    )
    kube.create(path_for("apps/v1", "deployments", namespace), deployment("web", [web]))
    dep = wait(
        lambda: (
            (d := kube.get(path_for("apps/v1", "deployments", namespace, "web"))).get("status", {}).get("readyReplicas")
            == 1
            and d
        ),
        90,
        "deployment ready",
    )
    assert dep["status"]["availableReplicas"] == 1
    pod = _pods(kube, namespace, "app=web")[0]
    ip = pod["status"]["podIP"]
    if bed.local:
        assert ip.startswith("198.18.")
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    with urllib.request.urlopen(f"http://{ip}:8000/", timeout=5) as resp:
        assert resp.status == 200
        assert b"Directory listing" in resp.read()


def test_job_that_exits_zero_completes(kube: KubeApi, namespace: str) -> None:
    script = "open('/dev/termination-log', 'w').write('trained 3 epochs'); print('done')"
    kube.create(path_for("batch/v1", "jobs", namespace), job("ok", [container("main", ["python", "-c", script])]))
    done = wait(
        lambda: job_condition(j := kube.get(path_for("batch/v1", "jobs", namespace, "ok")), "Complete") and j,
        90,
        "job Complete",
    )
    assert done["status"]["succeeded"] == 1
    pod = _pods(kube, namespace, "batch.kubernetes.io/job-name=ok")[0]
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (pod["status"]["phase"], term["exitCode"], term["reason"]) == ("Succeeded", 0, "Completed")
    assert term["message"] == "trained 3 epochs"


def test_job_that_exits_one_fails(kube: KubeApi, namespace: str) -> None:
    script = "import sys; print('first line'); print('the reason it failed', file=sys.stderr); sys.exit(1)"
    kube.create(
        path_for("batch/v1", "jobs", namespace),
        job("bad", [container("main", ["python", "-c", script], terminationMessagePolicy="FallbackToLogsOnError")]),
    )
    wait(lambda: job_condition(kube.get(path_for("batch/v1", "jobs", namespace, "bad")), "Failed"), 90, "job Failed")
    pod = _pods(kube, namespace, "batch.kubernetes.io/job-name=bad")[0]
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (pod["status"]["phase"], term["exitCode"], term["reason"]) == ("Failed", 1, "Error")
    assert term["message"].splitlines() == ["first line", "the reason it failed"]


def test_native_sidecar_does_not_keep_a_job_from_completing(kube: KubeApi, namespace: str, bed: Bed) -> None:
    # The sidecar serves forever; the main container talks to it over the pod's localhost.
    sidecar = container(
        "helper",
        ["python", "-m", "http.server", "9000", "--bind", "0.0.0.0"],
        restartPolicy="Always",
        startupProbe={"tcpSocket": {"port": 9000}, "periodSeconds": 1, "failureThreshold": 30},
    )
    client = container(
        "main", ["python", "-c", "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9000/').status)"]
    )
    body = job("sc", [client])
    body["spec"]["template"]["spec"]["initContainers"] = [sidecar]
    kube.create(path_for("batch/v1", "jobs", namespace), body)
    wait(
        lambda: job_condition(kube.get(path_for("batch/v1", "jobs", namespace, "sc")), "Complete"), 120, "job Complete"
    )
    pod = _pods(kube, namespace, "batch.kubernetes.io/job-name=sc")[0]
    assert pod["status"]["phase"] == "Succeeded"
    assert "200" in bed.pod_log(namespace, pod["metadata"]["name"], "main")
    # `kubectl logs` path: the API server asks the node for the log over mutual TLS.
    via_api = kube.text(path_for("v1", "pods", namespace, pod["metadata"]["name"], "log"), container="main")
    assert via_api.strip() == "200"


def test_image_of_another_project_fails_like_a_pull_error(kube: KubeApi, namespace: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "alien"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
    }
    kube.create(path_for("v1", "pods", namespace), body)

    def waiting_reason() -> str | None:
        statuses = kube.get(path_for("v1", "pods", namespace, "alien")).get("status", {}).get("containerStatuses")
        return statuses and (statuses[0]["state"].get("waiting") or {}).get("reason")

    assert wait(waiting_reason, 60, "ErrImagePull") == "ErrImagePull"
    pod = kube.get(path_for("v1", "pods", namespace, "alien"))
    assert pod["status"]["phase"] == "Pending"
    assert "nginx:1.27" in pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]


def test_pod_gets_env_volumes_and_a_service_account_token(kube: KubeApi, namespace: str, bed: Bed) -> None:
    kube.create(
        path_for("v1", "configmaps", namespace),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg"},
            "data": {"mode": "fast", "file.txt": "hello"},
        },
    )
    kube.create(
        path_for("v1", "secrets", namespace),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"token": "s3cret"}},
    )
    script = (
        "import json, os, urllib.request, ssl\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "tok = open(sa + '/token').read()\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "host = os.environ['KUBERNETES_SERVICE_HOST'] + ':' + os.environ['KUBERNETES_SERVICE_PORT']\n"
        "req = urllib.request.Request(f'https://{host}/version', headers={'Authorization': 'Bearer ' + tok})\n"
        "version = json.load(urllib.request.urlopen(req, context=ctx))['gitVersion']\n"
        "print(json.dumps({'mode': os.environ['MODE'], 'token': os.environ['TOKEN'], 'pod': os.environ['POD'],\n"
        "  'file': open('/etc/cfg/file.txt').read(), 'ns': open(sa + '/namespace').read(), 'version': version,\n"
        "  'scratch': os.path.isdir('/scratch')}))\n"
    )
    main = container(
        "main",
        ["python", "-c", script],
        env=[
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "scratch", "mountPath": "/scratch"}],
    )
    body = job(
        "env", [main], volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "scratch", "emptyDir": {}}]
    )
    kube.create(path_for("batch/v1", "jobs", namespace), body)
    wait(
        lambda: job_condition(kube.get(path_for("batch/v1", "jobs", namespace, "env")), "Complete"), 90, "job Complete"
    )
    pod = _pods(kube, namespace, "batch.kubernetes.io/job-name=env")[0]
    out = json.loads(bed.pod_log(namespace, pod["metadata"]["name"], "main").strip().splitlines()[-1])
    assert out.pop("version").startswith("v1.")
    assert out == {
        "mode": "fast",
        "token": "s3cret",
        "pod": pod["metadata"]["name"],
        "file": "hello",
        "ns": namespace,
        "scratch": True,
    }


def test_deleting_an_owner_collects_its_children_and_stops_their_processes(
    kube: KubeApi, namespace: str, bed: Bed
) -> None:
    marker = f"sleeper-{namespace}"
    sleeper = container("main", ["python", "-c", f"import time; time.sleep(3600)  # {marker}"])
    kube.create(path_for("apps/v1", "deployments", namespace), deployment("sleepy", [sleeper]))
    pod = wait(
        lambda: [p for p in _pods(kube, namespace, "app=sleepy") if p["status"].get("phase") == "Running"],
        90,
        "pod running",
    )[0]
    netns = f"ms{pod['status']['podIP'].split('.')[2]}-{pod['metadata']['uid'][:8]}"
    if bed.local:  # on kind the processes live in containers this host cannot see
        wait(lambda: _running(marker), 30, "the pod's process to exec")
        assert netns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert kube.get(path_for("apps/v1", "replicasets", namespace), labelSelector="app=sleepy")["items"]
    kube.delete(path_for("apps/v1", "deployments", namespace, "sleepy"), {"propagationPolicy": "Background"})
    wait(
        lambda: not kube.get(path_for("apps/v1", "replicasets", namespace), labelSelector="app=sleepy")["items"],
        60,
        "replicaset collected",
    )
    wait(lambda: not _pods(kube, namespace, "app=sleepy"), 60, "pod collected")
    if bed.local:
        assert not _running(marker), "deleting the pod must stop its process"
        assert netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout


def _running(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False).returncode == 0


def test_init_container_runs_first_and_pods_reach_each_other(kube: KubeApi, namespace: str, bed: Bed) -> None:
    web = container(
        "web",
        HTTP_SERVER,
        ports=[{"containerPort": 8000}],
        readinessProbe={"tcpSocket": {"port": 8000}, "periodSeconds": 1},
    )
    kube.create(path_for("apps/v1", "deployments", namespace), deployment("peer", [web]))
    wait(
        lambda: (
            kube.get(path_for("apps/v1", "deployments", namespace, "peer")).get("status", {}).get("readyReplicas") == 1
        ),
        90,
        "peer ready",
    )
    peer_ip = _pods(kube, namespace, "app=peer")[0]["status"]["podIP"]
    init = container(
        "fetch",
        [
            "python",
            "-c",
            f"import urllib.request as u; open('/shared/peer.txt','w').write(str(u.urlopen('http://{peer_ip}:8000/').status))",
        ],
        volumeMounts=[{"name": "work", "mountPath": "/shared"}],
    )
    main = container(
        "main",
        ["python", "-c", "print('peer said', open('/shared/peer.txt').read())"],
        volumeMounts=[{"name": "work", "mountPath": "/shared"}],
    )
    body = job("chain", [main], volumes=[{"name": "work", "emptyDir": {}}])
    body["spec"]["template"]["spec"]["initContainers"] = [init]
    kube.create(path_for("batch/v1", "jobs", namespace), body)
    wait(
        lambda: job_condition(kube.get(path_for("batch/v1", "jobs", namespace, "chain")), "Complete"),
        90,
        "job Complete",
    )
    pod = _pods(kube, namespace, "batch.kubernetes.io/job-name=chain")[0]
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert "peer said 200" in bed.pod_log(namespace, pod["metadata"]["name"], "main")


def test_failing_liveness_probe_restarts_the_container(kube: KubeApi, namespace: str) -> None:
    # Serves for a moment, then stops answering while the process lives on.
    script = (
        "import http.server, threading, time\n"
        "s = http.server.HTTPServer(('0.0.0.0', 8000), http.server.SimpleHTTPRequestHandler)\n"
        "threading.Timer(3, s.shutdown).start()\n"
        "s.serve_forever(); s.server_close(); time.sleep(3600)\n"
    )
    probe = {"httpGet": {"path": "/", "port": 8000}, "periodSeconds": 1, "failureThreshold": 2}
    kube.create(
        path_for("apps/v1", "deployments", namespace),
        deployment("flaky", [container("main", ["python", "-c", script], livenessProbe=probe)]),
    )

    def restarted() -> bool:
        pods = _pods(kube, namespace, "app=flaky")
        statuses = pods and pods[0]["status"].get("containerStatuses")
        return bool(statuses) and statuses[0]["restartCount"] >= 1

    wait(restarted, 90, "a restart after liveness failures")
    last = _pods(kube, namespace, "app=flaky")[0]["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] != 0


def test_pod_deletion_sends_sigterm_then_sigkill_after_the_grace_period(
    kube: KubeApi, namespace: str, bed: Bed
) -> None:
    polite = (
        "import signal, sys, time\n"
        "def bye(*_):\n    print('got SIGTERM', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\nprint('up', flush=True)\ntime.sleep(3600)\n"
    )
    stubborn = (
        "import signal, time\nsignal.signal(signal.SIGTERM, lambda *_: print('ignoring SIGTERM', flush=True))\n"
        "print('up', flush=True)\ntime.sleep(3600)\n"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bye"},
        "spec": {
            "terminationGracePeriodSeconds": 3,
            "containers": [
                container("polite", ["python", "-c", polite]),
                container("stubborn", ["python", "-c", stubborn]),
            ],
        },
    }
    kube.create(path_for("v1", "pods", namespace), pod)
    wait(lambda: kube.get(path_for("v1", "pods", namespace, "bye"))["status"].get("phase") == "Running", 60, "running")
    wait(
        lambda: "up" in bed.pod_log(namespace, "bye", "polite") and "up" in bed.pod_log(namespace, "bye", "stubborn"),
        30,
        "both containers up",
    )
    started = time.monotonic()
    kube.delete(path_for("v1", "pods", namespace, "bye"))
    wait(lambda: not kube.exists(path_for("v1", "pods", namespace, "bye")), 60, "pod gone")
    elapsed = time.monotonic() - started
    if bed.local:
        assert "got SIGTERM" in bed.pod_log(namespace, "bye", "polite")
        assert "ignoring SIGTERM" in bed.pod_log(namespace, "bye", "stubborn")
    # The stubborn one outlived SIGTERM: the pod could only go once the grace period ran out.
    assert elapsed >= 3
