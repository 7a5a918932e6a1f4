"""One operator-wide follower instead of a kopf timer per object.

kopf puts its finalizer on every object that has a timer or a daemon, and no setting turns
that off (``kopf.timer`` registers with ``requires_finalizer=True``; nolar/kopf#548 made it so,
because a timer of an object deleted without a finalizer is never stopped, and #896 was
declined). A finalizer costs a PATCH at create and one at delete, and a delete then waits for
a running operator. The follower does what such a timer did with none of that: every
``interval`` seconds it looks at each object a kopf handler of this process has handled
(:meth:`Follower.add`), with its newest body from a kopf index of the kind (every watch
event updates it, a DELETED event removes it), and runs ``step`` for it in a task of its own.

A step runs in the context of the object's last handler call, so kopf's Event posting
(``kopf.event``, and the object logger's warnings) works from it as from the handler;
kopf is not around it to send a patch: the step writes what it has to write itself.

Only objects handled in this process are followed: a replica paused by kopf's peering from
its start handles none. One that loses the lead while running keeps the objects it had but
does nothing for them while paused (``paused``: controllers/peering.py), since its frozen
watches no longer update their bodies; it takes up from fresh bodies when it resumes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from modelship.controllers import peering

log = logging.getLogger(__name__)


@dataclass
class Followed:
    """What the follower keeps of one object between its handler calls."""

    memo: kopf.Memo
    """The object's kopf memo, the one its handlers get: the step shares their state and lock."""
    logger: Any
    """kopf's logger of the object, from its last handler call."""
    context: contextvars.Context
    """The context of its last handler call: kopf's Event queue and settings are in it."""
    task: asyncio.Task[None] | None = field(default=None, compare=False)


Step = Callable[[Mapping[str, Any], Followed, Mapping[str, Any]], Awaitable[None]]
"""``step(body, followed, indices)``: what one tick does for one object."""
Due = Callable[[Mapping[str, Any], Followed, Mapping[str, Any]], bool]
"""``due(body, followed, indices)``: whether the step has anything to do now; called for every
object on every tick, so cheap and without I/O (no task is started for an object not due)."""
Paused = peering.Paused
"""Asked before a tick with work: whether kopf's peering paused this replica."""


def body_of(index: kopf.Index[Any, Any] | None, uid: str) -> Mapping[str, Any] | None:
    """The object's newest body in a kopf index keyed by uid; None when it is gone from it."""
    if index is None:
        return None
    for body in index.get(uid, []):
        return dict(body)
    return None


class Follower:
    """Runs ``step`` every ``interval`` seconds for each object followed that is ``due``, one task
    at a time per object; forgets an object once it is gone from ``bodies`` (the kopf index of
    the kind, by uid, named so in ``indices``), and passes over one being deleted."""

    def __init__(self, step: Step, *, due: Due, interval: float, bodies: str, paused: Paused | None = None) -> None:
        self.step, self.due = step, due
        self.interval = interval
        self.bodies = bodies
        self.paused = paused
        self.objects: dict[str, Followed] = {}

    def add(self, uid: str, memo: kopf.Memo, logger: Any) -> None:
        """Called by the kind's handler: follow this object from now on, in this context."""
        known = self.objects.get(uid)
        task = known.task if known is not None else None
        self.objects[uid] = Followed(memo, logger, contextvars.copy_context(), task)

    def tick(self, indices: Mapping[str, Any]) -> list[asyncio.Task[None]]:
        """Start the step of every object due; returns the tasks started."""
        started = []
        for uid, followed in list(self.objects.items()):
            body = body_of(indices.get(self.bodies), uid)
            if body is None:
                del self.objects[uid]  # deleted: its children go with it (ownerReferences)
                continue
            if (body.get("metadata") or {}).get("deletionTimestamp"):
                continue  # being deleted (another finalizer, a foreground delete): nothing to put back
            if followed.task is not None and not followed.task.done():
                continue  # the last tick's step still runs
            if not self.due(body, followed, indices):
                continue
            followed.task = asyncio.create_task(
                self._step(body, followed, indices), name=f"follow {uid}", context=followed.context
            )
            started.append(followed.task)
        return started

    async def _step(self, body: Mapping[str, Any], followed: Followed, indices: Mapping[str, Any]) -> None:
        try:
            await self.step(body, followed, indices)
        except Exception:  # one object's failure must not end the following of the others
            meta = body.get("metadata") or {}
            log.exception("following %s/%s failed", meta.get("namespace"), meta.get("name"))

    def any_due(self, indices: Mapping[str, Any]) -> bool:
        """Whether a tick would start a step (due() is cheap: asked again by the tick)."""
        for uid, followed in self.objects.items():
            body = body_of(indices.get(self.bodies), uid)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                continue
            if (followed.task is None or followed.task.done()) and self.due(body, followed, indices):
                return True
        return False

    async def run(self, indices: Mapping[str, Any]) -> None:
        while True:
            # The pause is asked only when there is work: it reads the peering objects.
            if self.paused is None or not self.any_due(indices) or not await self.paused():
                self.tick(indices)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        tasks = [f.task for f in self.objects.values() if f.task is not None and not f.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def register(registry: kopf.OperatorRegistry, follower_of: Callable[[], Follower], *, name: str, memo_key: str) -> None:
    """Start the follower made by ``follower_of`` at the operator's startup (in ``memo[memo_key]``,
    so every object's memo, a copy of the operator's, has it) and stop it at cleanup."""

    async def start(memo: kopf.Memo, **kwargs: Any) -> None:
        follower = follower_of()
        pause = peering.pause_of(memo)
        if pause is not None:
            follower.paused = pause.paused
        memo[memo_key] = follower
        # the indices are live objects: the startup handler's are the ones every event updates
        indices = {k: v for k, v in kwargs.items() if isinstance(v, kopf.Index)}
        memo[f"{memo_key}_task"] = asyncio.create_task(follower.run(indices), name=name)

    async def stop(memo: kopf.Memo, **_: Any) -> None:
        task: asyncio.Task[None] | None = memo.get(f"{memo_key}_task")
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        follower: Follower | None = memo.get(memo_key)
        if follower is not None:
            await follower.stop()

    kopf.on.startup(id=name, registry=registry)(start)
    kopf.on.cleanup(id=name, registry=registry)(stop)
