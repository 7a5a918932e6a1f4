"""``modelship operator``: flags and settings in, a running kopf operator out.

Standalone by default: exactly one replica runs (the Deployment has ``replicas: 1`` and
the ``Recreate`` strategy), and kopf does not look for peers. ``--peering NAME`` turns on
kopf's peering, so that several replicas can run and all but one of them pause.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import socket
from typing import Any, cast

import kopf

from modelship import __version__
from modelship.controllers import experiment, modeldeployment, modelversion, peering, registeredmodel
from modelship.controllers.logs import configure_logging
from modelship.controllers.metrics import serve_metrics
from modelship.controllers.settings import OperatorConfig

FINALIZER = "modelship.io/finalizer"
ANNOTATIONS_PREFIX = "modelship.io"

HANDLER_MODULES = (experiment, modelversion, modeldeployment, registeredmodel)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``modelship operator``; each overrides its MODELSHIP_* variable."""
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        dest="namespaces",
        action="append",
        metavar="NS",
        help="watch this namespace (repeatable; default: all namespaces)",
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="watch every namespace (the default when no --namespace is given)",
    )
    parser.add_argument("--health-host", help="address of the liveness and metrics endpoints (default 127.0.0.1)")
    parser.add_argument("--liveness-port", type=int, help="port of /healthz (default 8080; 0 turns it off)")
    parser.add_argument("--metrics-host", help="address of /metrics (default: --health-host)")
    parser.add_argument("--metrics-port", type=int, help="port of /metrics (default 9090; 0 turns it off)")
    parser.add_argument(
        "--peering",
        dest="peering_name",
        metavar="NAME",
        help="enable kopf peering with this peering object (default: standalone, one replica)",
    )
    parser.add_argument(
        "--priority",
        type=int,
        help="peering priority of this replica (default: random with --peering, so one replica works)",
    )
    parser.add_argument("--tracking-url", help="URL of the tracking server (trial pods reach it too)")
    parser.add_argument(
        "--tracking-token-secret",
        metavar="NAME",
        help="Secret in each Experiment's namespace holding the token trial sidecars send (default: none)",
    )
    parser.add_argument("--tracking-token-secret-key", metavar="KEY", help="key inside that Secret (default: token)")
    parser.add_argument(
        "--trainer-image", help="image of trial pods without spec.project.image (default: this version's)"
    )
    parser.add_argument(
        "--forbid-pickle",
        action="store_true",
        default=None,
        help="refuse ModelDeployments with spec.allowPickle (models that run their author's code on load)",
    )
    parser.add_argument(
        "--webhook-url",
        dest="webhook_urls",
        action="append",
        metavar="URL",
        help="registry webhook receiver (repeatable)",
    )
    parser.add_argument(
        "--webhook-secret",
        metavar="NAMESPACE/NAME",
        help="Secret holding the HMAC key that signs webhook deliveries (key: secret)",
    )
    parser.add_argument("--log-format", choices=["logfmt", "json", "text"], help="log line format (default logfmt)")
    parser.add_argument("-v", "--verbose", action="store_true", default=None, help="log at DEBUG level")
    parser.epilog = (
        "The cluster is reached through KUBECONFIG (or ~/.kube/config), or the in-cluster "
        "service account. Every flag has a MODELSHIP_* environment variable."
    )


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    """Settings from the environment, overridden by the flags that were given."""
    given = {
        key: value for key, value in vars(args).items() if value is not None and key in OperatorConfig.model_fields
    }
    if getattr(args, "all_namespaces", False):
        given["namespaces"] = []
    return OperatorConfig(**given)


def build_kopf_settings(config: OperatorConfig) -> kopf.OperatorSettings:
    """kopf's settings for Modelship (no kopf start; reads only POD_NAME or the hostname)."""
    settings = kopf.OperatorSettings()
    # Our own annotation prefix, so that kopf's bookkeeping on the objects reads as ours:
    # modelship.io/reconcile (progress) and modelship.io/last-handled-configuration.
    # Annotations, not status: status belongs to the schema and would be pruned.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATIONS_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATIONS_PREFIX, key="last-handled-configuration"
    )
    # Events are for people: warnings and failures (a refused spec, a failing handler),
    # not every handler's success. kopf posts only explicit kopf.event() calls unless
    # its per-object log records are posted too.
    settings.posting.loggers = True
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "modelship-operator"
    settings.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()
    # Bounded watches: a silently dropped connection costs at most this long.
    settings.watching.server_timeout = config.watch_server_timeout
    settings.watching.client_timeout = config.watch_server_timeout + 60
    settings.watching.connect_timeout = 30
    # Server-side label selectors: the operator watches the Deployments and pods of
    # ModelDeployments only, not every one in the cluster (kopf's label filters on the
    # handlers are client-side: every object would reach the operator first).
    for resource, selector in modeldeployment.WATCH_SELECTORS.items():
        settings.watching.label_selectors[resource] = selector
    settings.peering.standalone = config.peering_name is None
    settings.peering.clusterwide = config.clusterwide
    settings.peering.priority = peering_priority(config)
    if config.peering_name is not None:
        settings.peering.name = config.peering_name
        settings.peering.mandatory = True  # fail loudly if the peering CRDs are missing
    return settings


def peering_priority(config: OperatorConfig, rng: random.Random | None = None) -> int:
    """The configured priority, or a random one with peering (see OperatorConfig.priority)."""
    if config.priority is not None:
        return config.priority
    if config.peering_name is None:
        return 0
    return (rng or random.SystemRandom()).randint(1, 2**31 - 1)


async def _version_probe(**_: Any) -> str:
    return __version__


def register_handlers(registry: kopf.OperatorRegistry) -> kopf.OperatorRegistry:
    """Register the four kinds' handlers, login and probes on ``registry``."""
    # Log in through the kubernetes client's own config: in-cluster service account,
    # else KUBECONFIG (or ~/.kube/config), exactly as kubectl would.
    kopf.on.login(registry=registry)(kopf.login_via_client)
    kopf.on.probe(id="version", registry=registry)(_version_probe)
    for module in HANDLER_MODULES:
        module.register(registry)
    return registry


def run(args: argparse.Namespace) -> int:
    """Start the operator and block until it stops (SIGTERM, SIGINT)."""
    config = config_from_args(args)
    configure_logging(config.log_format, verbose=config.verbose)
    settings = build_kopf_settings(config)
    registry = register_handlers(kopf.OperatorRegistry())
    if config.metrics_port:
        host = config.metrics_host or config.health_host
        serve_metrics(host, config.metrics_port)
        logger.info("metrics on http://%s:%d/metrics", host, config.metrics_port)
    identity = peering.own_identity()
    if config.peering_name:
        mode = f"peering {config.peering_name!r} as {identity!r} at priority {settings.peering.priority}"
    else:
        mode = "standalone (run exactly one replica)"
    scope = "all namespaces" if config.clusterwide else ", ".join(config.namespaces)
    logger.info("modelship operator %s: %s, watching %s", __version__, mode, scope)
    kopf.run(
        registry=registry,
        settings=settings,
        clusterwide=config.clusterwide,
        namespaces=config.namespaces,
        standalone=config.peering_name is None,
        peering_name=config.peering_name,
        priority=settings.peering.priority,
        # kopf and the loops beside its handlers (controllers/peering.py) know this replica by one name
        identity=cast(Any, identity),
        liveness_endpoint=config.liveness_endpoint,
        memo=kopf.Memo(config=config, peering_identity=identity, peering_priority=settings.peering.priority),
    )
    return 0
