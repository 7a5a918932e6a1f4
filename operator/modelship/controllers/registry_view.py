"""The operator's view of a kind's objects per namespace, kept by its watch and its own writes.

What registry decisions read instead of listing. A decision is over all of a model's
versions, so listing them for every object made N objects created together cost N lists of
up to N objects (1,000 versions: 2,000 list pages, O(N²) JSON). kopf already watches every
ModelVersion and RegisteredModel: an event handler feeds :meth:`View.observe`, and the
registry writer feeds it each object its own writes return, so a decision never waits for
its own write to come back through the watch. Of two copies of one object the later
resourceVersion wins (:func:`modelship.resources.registry.is_newer`); a deleted object stays
deleted (uids are never reused).

A namespace is listed once, on its first use: the watch delivers objects one worker at a
time, and a decision made before it delivered every version would miss some. Every write
from this view stays conditional on the resourceVersion it holds, so a copy that is stale
anyway (another client wrote) costs a 409 and a GET of that one object
(:meth:`View.refresh`), never a wrong status.

Blocking (:meth:`View.model` may list); thread-safe: the event handlers run on kopf's loop,
the registry writer in worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from modelship import kube
from modelship.api import GROUP, VERSION
from modelship.resources.registry import is_newer

MAX_TOMBSTONES = 100_000
RELIST_SECONDS = 300.0
"""A namespace is listed again at its first use after this long: an object whose deletion a
watch that reconnected never reported leaves the view then (at most this stale)."""


class View:
    def __init__(self, plural: str) -> None:
        self.plural = plural
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, dict[str, Any]]] = {}
        self._gone: dict[str, None] = {}
        self._primed: dict[str, float] = {}

    def _keep(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        uid, namespace = meta.get("uid"), meta.get("namespace") or ""
        if not uid or uid in self._gone:
            return
        current = self._objects.setdefault(namespace, {}).get(uid)
        if is_newer(obj, current):
            self._objects[namespace][uid] = dict(obj)

    def observe(self, obj: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A copy of an object from the watch or from the answer to a write."""
        with self._lock:
            if not deleted:
                self._keep(obj)
                return
            meta = obj.get("metadata") or {}
            uid = meta.get("uid")
            if uid:
                self._objects.get(meta.get("namespace") or "", {}).pop(uid, None)
                self._gone[uid] = None
                while len(self._gone) > MAX_TOMBSTONES:
                    self._gone.pop(next(iter(self._gone)))

    def prime(self, namespace: str) -> None:
        """List the namespace and keep what is newer than the view; drop what the list no
        longer has, unless the view's copy is later than the list."""
        path = kube.custom_path(namespace, self.plural)
        items: list[dict[str, Any]] = []
        token: str | None = None
        listed_at: str | None = None
        while True:
            page = kube.get(path, limit="500", **({"continue": token} if token else {}))
            listed_at = listed_at or (page.get("metadata") or {}).get("resourceVersion")
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        self.absorb_list(namespace, items, listed_at)

    def absorb_list(self, namespace: str, items: list[dict[str, Any]], listed_at: str | None) -> None:
        """What a list of the namespace at resourceVersion ``listed_at`` returned: keep the
        newer copies; drop objects the list lacks unless the view's copy is later than it."""
        at_list = {"metadata": {"resourceVersion": listed_at}}
        with self._lock:
            present = set()
            for obj in items:
                self._keep(obj)
                present.add(obj["metadata"]["uid"])
            held = self._objects.get(namespace, {})
            for uid in [u for u, o in held.items() if u not in present and not is_newer(o, at_list)]:
                del held[uid]
            self._primed[namespace] = time.monotonic()

    def refresh(self, obj: Mapping[str, Any]) -> None:
        """GET one object again (after its write was refused with 409): the view takes it."""
        meta = obj.get("metadata") or {}
        found = kube.get_or_none(kube.custom_path(meta.get("namespace"), self.plural, meta.get("name")))
        if found is None:
            self.observe(obj, deleted=True)
        else:
            self.observe(found)

    def select(self, namespace: str, keep: Callable[[Mapping[str, Any]], bool]) -> list[dict[str, Any]]:
        """The namespace's objects that ``keep`` accepts (listing the namespace on first use)."""
        primed = self._primed.get(namespace)
        if primed is None or primed + RELIST_SECONDS < time.monotonic():
            self.prime(namespace)
        with self._lock:
            return [o for o in self._objects.get(namespace, {}).values() if keep(o)]

    def of_model(self, namespace: str, model: str) -> list[dict[str, Any]]:
        """The namespace's objects whose ``spec.model`` is ``model``."""
        return self.select(namespace, lambda o: (o.get("spec") or {}).get("model") == model)

    def forget(self) -> None:
        """Drop everything (tests; an operator that lost its watches would list again)."""
        with self._lock:
            self._objects.clear()
            self._gone.clear()
            self._primed.clear()


MODEL_VERSIONS = View("modelversions")
REGISTERED_MODELS = View("registeredmodels")


def feeder(view: View) -> Callable[..., Any]:
    """A kopf event handler that keeps ``view`` from the kind's watch."""

    async def feed(body: kopf.Body, type: str | None, **_: Any) -> None:
        view.observe(body, deleted=type == "DELETED")

    return feed


def register(registry: kopf.OperatorRegistry, view: View) -> None:
    """Feed ``view`` from kopf's watch of its kind (register before the kind's other event
    handlers: kopf runs them in order, so a deletion handler sees the view without the object)."""
    kopf.on.event(GROUP, VERSION, view.plural, id=f"{view.plural}-view", registry=registry)(feeder(view))
