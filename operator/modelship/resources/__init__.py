"""Pure decisions of the operator: spec in, desired state out.

This package owns the functions that turn a resource's spec and what was observed into
what should be: status conditions, and later the desired Job, Deployment, Service and
HTTPRoute dicts. It is purely data-manipulative: nothing here performs I/O, reads the
clock, imports ``kopf`` or a Kubernetes client, or logs. Callers pass the current time in.
``controllers`` applies what these functions decide; tests call them directly.
"""
