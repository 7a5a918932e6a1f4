"""Modelship: the ML lifecycle as a Kubernetes operator.

Subpackages own one concern each: ``api`` (typed CRD models, no I/O), ``resources``
(pure builders of child objects, no I/O), ``controllers`` (kopf handlers, the only code
that talks to the Kubernetes API), ``tracking``, ``models``, ``serving`` and ``projects``.
"""

__version__ = "0.1.0"
