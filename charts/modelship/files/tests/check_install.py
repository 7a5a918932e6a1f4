"""`helm test`: the release answers. Run in a test pod as `python -c <this file> <check>`.

tracking  GET $TRACKING_URL/health answers 200.
operator  every Ready operator pod ($OPERATOR_SELECTOR in $POD_NAMESPACE) answers 200 on
          /healthz at $HEALTH_PORT, and a sample ModelVersion created in $SAMPLE_NAMESPACE gets
          its version number from the operator (status.version) within $TIMEOUT seconds; the
          sample is deleted afterwards.
"""

import json
import os
import sys
import time
import urllib.request
import uuid


def get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode()


def check_tracking():
    url = os.environ["TRACKING_URL"].rstrip("/") + "/health"
    status, body = get(url)
    assert status == 200, f"{url}: HTTP {status} {body}"
    print(f"ok: {url} answered {status}")


def check_operator():
    from modelship import kube

    namespace, selector = os.environ["POD_NAMESPACE"], os.environ["OPERATOR_SELECTOR"]
    pods = kube.list_items(kube.core_path(namespace, "pods"), labelSelector=selector)
    ready = [
        p
        for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])
    ]
    assert ready, f"no Ready operator pod ({selector}) in {namespace}: {[p['metadata']['name'] for p in pods]}"
    for pod in ready:
        url = f"http://{pod['status']['podIP']}:{os.environ['HEALTH_PORT']}/healthz"
        status, body = get(url)
        assert status == 200, f"{url}: HTTP {status} {body}"
        print(f"ok: {pod['metadata']['name']} {url} answered {status}")

    sample = os.environ["SAMPLE_NAMESPACE"]
    name = f"helm-test-{uuid.uuid4().hex[:8]}"
    collection = kube.custom_path(sample, "modelversions")
    kube.create(
        collection,
        {
            "apiVersion": "modelship.io/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "helm-test"}},
            "spec": {"model": name, "source": "file:///dev/null/model", "description": "helm test sample"},
        },
    )
    try:
        deadline, status = time.monotonic() + float(os.environ.get("TIMEOUT", "120")), {}
        while time.monotonic() < deadline:
            status = kube.get(f"{collection}/{name}").get("status") or {}
            if isinstance(status.get("version"), int):
                print(f"ok: ModelVersion {sample}/{name} reconciled: version {status['version']}")
                return
            time.sleep(1)
        raise AssertionError(f"ModelVersion {sample}/{name} got no status.version; status: {json.dumps(status)}")
    finally:
        kube.delete(f"{collection}/{name}")


{"tracking": check_tracking, "operator": check_operator}[sys.argv[1]]()
