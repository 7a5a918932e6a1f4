"""MLflow Projects: the ``MLproject`` file, its entry points, and running one.

Owns: parsing ``MLproject`` files as MLflow does (``spec``), typing parameter values and
rendering an entry point's shell command (``render``, each value quoted for its place in
the template by ``quoting``), checking a project out of git
(``git``), and ``modelship run`` (``runner``, ``cli``), the local equivalent of ``mlflow run
--env-manager local``, which talks to the tracking server with the one tracking client
(``modelship.tracking.client``).

Must not: import ``mlflow`` (this package works in an image without it), talk to
Kubernetes, or do I/O in ``spec``, ``render`` and ``quoting`` beyond reading the
``MLproject`` file in ``load_project``: they are pure and unit-tested on their own. URLs
are shown only through ``modelship.uris.redact_url``. Subprocesses (git, the entry point)
and HTTP live in ``git`` and ``runner`` only.
"""

from modelship.projects.render import ResolvedCommand, render_command, resolve_parameters
from modelship.projects.spec import (
    EntryPoint,
    Environment,
    Parameter,
    Project,
    ProjectError,
    load_project,
    parse_project,
)
from modelship.projects.values import PARAMETER_TYPES

__all__ = [
    "PARAMETER_TYPES",
    "EntryPoint",
    "Environment",
    "Parameter",
    "Project",
    "ProjectError",
    "ResolvedCommand",
    "load_project",
    "parse_project",
    "render_command",
    "resolve_parameters",
]
