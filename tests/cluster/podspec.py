"""Pure decisions of the node agent: images, environment, commands, phases and conditions.

No I/O here: the agent's runtime feeds these functions what it read and acts on what they
return, so they are unit-tested on their own (tests/unit/testbed/).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The project's image, mapped onto its own virtual environment.
PROJECT_IMAGE_NAME = "modelship"
PROJECT_ENTRYPOINT = ["modelship"]
# What the Dockerfile COPYs into the image besides the venv (image path -> the repository's
# directory), bind-mounted read-only into the bed's containers of that image.
PROJECT_IMAGE_FILES = {"/opt/modelship/examples": "manifests/examples"}


def coredns_image(versions: dict[str, str]) -> str:
    return f"registry.k8s.io/coredns/coredns:{versions['coredns']}"


def traefik_image(versions: dict[str, str]) -> str:
    return f"docker.io/library/traefik:{versions['traefik']}"


def upstream_images(versions: dict[str, str]) -> dict[str, str]:
    """The allow-list of upstream images: exact pinned reference -> the built binary that is its entrypoint."""
    return {coredns_image(versions): "coredns", traefik_image(versions): "traefik"}


def image_repository(image: str) -> str:
    """The repository part of an image reference: no tag, no digest."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref = ref[: len(ref) - len(last)] + last.split(":", 1)[0]
    return ref


def normalize_image(image: str) -> str:
    """A reference as a container runtime resolves it: ``traefik:v3`` is ``docker.io/library/traefik:v3``."""
    first, _, rest = image.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        image = f"docker.io/{image}" if rest else f"docker.io/library/{image}"
    elif first == "docker.io" and "/" not in rest:
        image = f"docker.io/library/{rest}"
    return image


def is_project_image(image: str) -> bool:
    """Images whose repository is named ``modelship`` (any registry, any tag)."""
    return image_repository(image).rsplit("/", 1)[-1] == PROJECT_IMAGE_NAME


def image_files(image: str, repository: str) -> list[dict[str, Any]]:
    """The read-only mounts that give a container of ``image`` the files the real image carries."""
    if not is_project_image(image):
        return []
    return [
        {"source": f"{repository}/{source}", "target": target, "readOnly": True}
        for target, source in sorted(PROJECT_IMAGE_FILES.items())
    ]


def image_allowed(image: str, upstream: dict[str, str] | None = None) -> bool:
    """The project's image, or one of the pinned upstream images the bed has a binary for."""
    return is_project_image(image) or normalize_image(image) in (upstream or {})


def image_pull_message(image: str, upstream: dict[str, str] | None = None) -> str:
    pinned = ", ".join(sorted(upstream or {})) or "none"
    return (
        f'image "{image}" cannot be pulled: the test bed has no container engine and runs only '
        f"images named {PROJECT_IMAGE_NAME} (e.g. ghcr.io/modelship/modelship:dev), "
        "which map to the project's own virtual environment, and these pinned upstream images, "
        f"which map to binaries built from their Go modules: {pinned}"
    )


def entrypoint(image: str, upstream: dict[str, str] | None = None, bin_dir: str = "") -> list[str]:
    """The image's ENTRYPOINT as the bed runs it."""
    binary = (upstream or {}).get(normalize_image(image))
    if binary is not None and not is_project_image(image):
        return [f"{bin_dir}/{binary}" if bin_dir else binary]
    return list(PROJECT_ENTRYPOINT)


def resolv_conf(pod: dict[str, Any], cluster_dns: str, node_resolv: str, cluster_domain: str = "cluster.local") -> str:
    """/etc/resolv.conf for a pod, by the kubelet's rules for dnsPolicy and dnsConfig.

    ClusterFirst (the default, and ClusterFirstWithHostNet): the cluster DNS with the
    search path ``<ns>.svc.<domain> svc.<domain> <domain>`` and ndots:5. Default: the
    node's own resolv.conf. None: only what dnsConfig gives. dnsConfig's nameservers and
    searches are appended (the first 3 servers, 32 searches), its options override by name.
    """
    spec = pod.get("spec", {})
    namespace = pod["metadata"]["namespace"]
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    servers: list[str] = []
    searches: list[str] = []
    options: dict[str, str | None] = {}
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        servers = [cluster_dns]
        searches = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        options = {"ndots": "5"}
    elif policy == "Default":
        for line in node_resolv.splitlines():
            words = line.split()
            if not words or words[0].startswith(("#", ";")):
                continue
            if words[0] == "nameserver" and len(words) > 1:
                servers.append(words[1])
            elif words[0] in ("search", "domain"):
                searches = words[1:]
            elif words[0] == "options":
                for opt in words[1:]:
                    name, _, value = opt.partition(":")
                    options[name] = value or None
    elif policy != "None":
        raise ConfigError(f"dnsPolicy {policy!r} is not one of ClusterFirst, ClusterFirstWithHostNet, Default, None")
    config = spec.get("dnsConfig") or {}
    servers += [s for s in config.get("nameservers") or [] if s not in servers]
    searches += [s for s in config.get("searches") or [] if s not in searches]
    for opt in config.get("options") or []:
        options[opt["name"]] = opt.get("value")
    if policy == "None" and not servers:
        raise ConfigError("dnsPolicy None needs dnsConfig.nameservers")
    lines = [f"nameserver {s}" for s in servers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:32]))
    if options:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}" for k, v in options.items()))
    return "\n".join(lines) + "\n"


_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes, others stay."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR_REF.sub(repl, value)


class ConfigError(Exception):
    """A container cannot be configured yet (reason CreateContainerConfigError)."""


# lookup(kind, namespace, name) -> data dict (decoded) or None when the object is missing
Lookup = Callable[[str, str, str], "dict[str, str] | None"]


def field_value(pod: dict[str, Any], path: str) -> str:
    meta = pod.get("metadata", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod.get("spec", {}).get("nodeName", ""),
        "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName", ""),
        "status.podIP": pod.get("status", {}).get("podIP", ""),
        "status.hostIP": pod.get("status", {}).get("hostIP", ""),
    }
    if path in simple:
        return str(simple[path] or "")
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise ConfigError(f"fieldRef {path!r} is not supported by the test bed")


def _ref_value(ref: dict[str, Any], kind: str, namespace: str, lookup: Lookup) -> str | None:
    data = lookup(kind, namespace, ref["name"])
    optional = bool(ref.get("optional"))
    if data is None:
        if optional:
            return None
        raise ConfigError(f'{kind} "{ref["name"]}" not found')
    if ref["key"] not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return data[ref["key"]]


def container_env(
    pod: dict[str, Any], container: dict[str, Any], base: dict[str, str], lookup: Lookup
) -> dict[str, str]:
    """The process environment: the image's base, envFrom, then env in order, expanded."""
    namespace = pod["metadata"]["namespace"]
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(key)
            if not ref:
                continue
            data = lookup(kind, namespace, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind} "{ref["name"]}" not found')
            env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" in var:
            vf = var["valueFrom"]
            value: str | None
            if "fieldRef" in vf:
                value = field_value(pod, vf["fieldRef"]["fieldPath"])
            elif "secretKeyRef" in vf:
                value = _ref_value(vf["secretKeyRef"], "secret", namespace, lookup)
            elif "configMapKeyRef" in vf:
                value = _ref_value(vf["configMapKeyRef"], "configmap", namespace, lookup)
            elif "resourceFieldRef" in vf:
                value = resource_field(container, vf["resourceFieldRef"])
            else:
                raise ConfigError(f"env {name}: unsupported valueFrom {sorted(vf)}")
            if value is None:
                continue
            env[name] = value
        else:
            env[name] = expand(str(var.get("value", "")), env)
    return env


def resource_field(container: dict[str, Any], ref: dict[str, Any]) -> str:
    kind, _, resource = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    return str(value) if value is not None else "0"


def container_argv(
    container: dict[str, Any], env: dict[str, str], image_entrypoint: list[str] | None = None
) -> list[str]:
    """command/args as the kubelet combines them with the image's entrypoint."""
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(image_entrypoint or PROJECT_ENTRYPOINT) + list(args or [])
    return [expand(a, env) for a in argv]


def is_sidecar(container: dict[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def backoff_seconds(restarts: int, base: float = 1.0, cap: float = 20.0) -> float:
    """Restart delay; shorter than the kubelet's 10 s to 5 min so that tests stay quick."""
    return min(cap, base * (2 ** max(0, restarts - 1)))


@dataclass
class Terminated:
    exit_code: int
    reason: str = ""


@dataclass
class MainOutcome:
    """What the main containers came to: the input of the pod phase decision."""

    restart_policy: str
    terminated: dict[str, Terminated] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)


def pod_phase(initialized: bool, init_failed: bool, outcome: MainOutcome, started_any: bool) -> str:
    """Pending, Running, Succeeded or Failed, by the kubelet's rules for finished pods."""
    if init_failed:
        return "Failed"
    if not initialized or not started_any:
        return "Pending"
    if outcome.running:
        return "Running"
    if len(outcome.terminated) < len(outcome.names):
        return "Running"
    codes = [t.exit_code for t in outcome.terminated.values()]
    if outcome.restart_policy == "Always":
        return "Running"
    if all(c == 0 for c in codes):
        return "Succeeded"
    if outcome.restart_policy == "Never":
        return "Failed"
    return "Running"  # OnFailure: the failed ones are restarting


def condition(ctype: str, ok: bool, now: str, previous: list[dict[str, Any]], reason: str = "") -> dict[str, Any]:
    """A pod condition that keeps its lastTransitionTime while its status holds."""
    status = "True" if ok else "False"
    for c in previous:
        if c.get("type") == ctype and c.get("status") == status:
            out = {
                "type": ctype,
                "status": status,
                "lastTransitionTime": c.get("lastTransitionTime") or now,
                "lastProbeTime": None,
            }
            if reason:
                out["reason"] = reason
            return out
    out = {"type": ctype, "status": status, "lastTransitionTime": now, "lastProbeTime": None}
    if reason:
        out["reason"] = reason
    return out
