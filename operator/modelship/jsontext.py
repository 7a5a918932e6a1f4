"""One check shared by every JSON reader of Modelship: strings that are not Unicode.

Python's ``json`` accepts an escaped lone surrogate (``"\\ud800"``) and makes a ``str``
that cannot be encoded, so it fails later, far from the input (a 500 when the answer or
the database write encodes it). Readers call :func:`has_lone_surrogate` right after
parsing and refuse the body with their own error. A leaf module: no imports of Modelship.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def has_lone_surrogate(text: str, obj: Any) -> bool:
    """Whether the parsed ``obj`` of JSON ``text`` holds a string that cannot be encoded.

    The walk (iterative: bodies nest) runs only when ``text`` has a surrogate escape at all.
    """
    if not _SURROGATE_ESCAPE.search(text):
        return False
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
