"""The REST paths of MLflow's tracking API, and the one rule for an artifact path.

``API`` prefixes every tracking call (``API + "/runs/get"``); ``ARTIFACTS`` is the
``mlflow-artifacts`` proxy (``GET ARTIFACTS/<path>`` downloads, ``PUT`` uploads, ``DELETE``
removes, ``GET ARTIFACTS?path=<dir>`` lists). Artifact paths are relative, POSIX, and checked
by :func:`safe_path` before any I/O: no ``..``, no absolute paths, no backslashes or NUL
bytes, no name longer than a file system takes, and nothing under the local store's upload
directory ``.uploads``.
"""

from __future__ import annotations

from modelship.tracking.errors import invalid

API = "/api/2.0/mlflow"
"""The prefix of MLflow's REST API (``mlflow server``'s and ours)."""
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
"""The ``mlflow-artifacts`` proxy; ``GET ARTIFACTS?path=<dir>`` lists a directory."""
ARTIFACT_FILES = ARTIFACTS + "/"
"""The prefix of one artifact's URL path: ``ARTIFACT_FILES + path``."""
UPLOAD_ARTIFACT = f"{API}/upload-artifact"
"""The UI's upload into a run (10 MB at most, checked by its route), limited as an artifact."""
UI_API = "/api/2.0/modelship"
"""The prefix of Modelship's own endpoints for the web UI (``server/ui_api.py``)."""
TABLE_RUNS_SEARCH = f"{UI_API}/runs/table-search"
"""The web UI's runs table's search: runs/search's body, each run in the table's shape."""

# A name of at most 255 bytes is what ext4, XFS and most other file systems take; 1024 bytes
# for the whole path is S3's key limit (the local store's root comes on top of it).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024
INVALID_PATH = "Invalid path"
"""MLflow's message for an artifact path that is absolute or has a ``..`` part, word for word."""
UPLOADS = ".uploads"
"""The local store's directory of uploads in progress, at the root: no artifact path enters it."""


def safe_path(path: str | None, allow_root: bool = True) -> str:
    """Normalise an artifact path or refuse it (``INVALID_PARAMETER_VALUE``)."""
    path = path or ""
    # A path that could leave the artifact root (NUL, a backslash, absolute, a '..' part) gets
    # MLflow's exact answer, "Invalid path" (its validate_path_is_safe): clients and MLflow's
    # own tests compare the whole message. The reason is in the docs (docs/tracking.md).
    if "\x00" in path or "\\" in path:
        raise invalid(INVALID_PATH)
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise invalid(INVALID_PATH)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise invalid(INVALID_PATH)
    norm = "/".join(parts)
    if not norm and not allow_root:
        raise invalid("Artifact path must not be empty")
    if len(norm.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise invalid(f"Invalid artifact path: '{norm[:100]}...' is longer than {MAX_PATH_BYTES} bytes")
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise invalid(f"Invalid artifact path: the name '{part[:40]}...' is longer than {MAX_NAME_BYTES} bytes")
    if parts and parts[0] == UPLOADS:
        raise invalid(
            f"Invalid artifact path: '{norm[:100]}': '{UPLOADS}' at the root is reserved for uploads in progress"
        )
    return norm
