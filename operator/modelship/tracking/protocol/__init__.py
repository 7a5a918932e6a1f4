"""MLflow's tracking wire protocol, shared by the server, the sidecar, the client and the store.

Owns: the REST paths (``paths``: the API prefixes and the rule for artifact paths,
``safe_path``), the request bodies as pydantic models (``messages``), the hand-written parser
of the two hot write bodies (``fastparse``), MLflow's input rules and batch limits
(``validation``), and the request and response helpers of the wire format (``http``: MLflow's
error body, the raw ASGI body reader of the hot paths). Every side of a call imports them from here, so what the sidecar
acknowledges, what the client sends and what the server and store take are one set of rules.

Must not: do I/O, or import the server, the sidecar, the store or the client (a layer
contract in ``pyproject.toml`` checks it); it is light enough for a training pod's sidecar
and a model server (pydantic, orjson and starlette's request types; no SQLAlchemy, no app).
"""
