"""Quote a value for the place it takes in a ``bash -c`` command template. Pure: no I/O.

``shlex.quote`` is right only where the placeholder stands outside any quotes. MLflow
applies it everywhere, so in ``--name "{name}"`` the value lands inside double quotes
wrapped in single quotes, which are literal there: ``$(id)`` in the value runs. Here a
small lexer follows the template's quoting as bash reads it, and each placeholder is
quoted for where it stands:

* outside quotes, or inside ``$(...)``: ``shlex.quote``;
* inside double quotes: ``$``, a backquote, ``"`` and ``\\`` escaped with a backslash;
* inside single quotes (and ``$'...'``): the quote is closed, the ``shlex.quote``'d value
  follows, and the quote is opened again;
* in a comment: as outside quotes, and a value with a newline is refused (it would end
  the comment);
* inside backquotes, ``${...}``, ``$((...))`` and here-documents, where no quoting holds
  (bash rescans or evaluates the text), only values that need no quoting are accepted:
  letters, digits and ``@%+=:,./-_``.

The template's own character before a placeholder stays what it was: a ``$`` right before
``{name}`` is a literal ``$`` (else it would join the value into ``$'...'`` or a variable),
and a lone backslash a literal backslash (else it would escape the value's opening quote).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_PLAIN = re.compile(r"[\w@%+=:,./-]*", re.ASCII)
_METACHARACTERS = frozenset(" \t\n;&|()<>")

# Places where no quoting keeps a value literal, by the name the error message uses.
_UNQUOTABLE = {
    "backquote": "backquotes (`...`)",
    "brace": "${...}",
    "arith": "$((...))",
    "heredoc": "a here-document",
}


class QuotingError(ValueError):
    """A value that cannot be put where the template puts it; the message says where."""


@dataclass
class _Frame:
    kind: str  # top, cmd, dq, sq, ansi, backquote, brace, arith, comment, heredoc
    depth: int = 0  # open parentheses of a cmd or arith frame
    delimiter: str = ""  # of a heredoc
    strip_tabs: bool = False  # <<- heredoc
    line: str = ""  # the heredoc line read so far


@dataclass
class ShellContext:
    """Where bash stands after reading the template text fed so far."""

    stack: list[_Frame] = field(default_factory=lambda: [_Frame("top")])
    word_start: bool = True
    escaped: bool = False
    """The last character fed was a backslash that escapes the next one."""
    dollar: bool = False
    """The last character fed was a ``$`` that would combine with the next one."""
    heredocs: list[_Frame] = field(default_factory=list)
    """Here-documents announced on the current line; their bodies start after it."""

    @property
    def kind(self) -> str:
        return self.stack[-1].kind

    # -- reading the template ------------------------------------------------------------
    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            i = self._step(text, i)

    def _push(self, kind: str) -> None:
        self.stack.append(_Frame(kind))

    def _pop(self) -> None:
        self.stack.pop()

    def _step(self, text: str, i: int) -> int:
        c = text[i]
        frame = self.stack[-1]
        self.dollar = False
        if self.escaped:
            self.escaped = False
            if frame.kind in ("top", "cmd"):
                self.word_start = False
            return i + 1
        kind = frame.kind
        if kind == "sq":
            if c == "'":
                self._pop()
            return i + 1
        if kind == "heredoc":
            return self._heredoc_char(frame, c, i)
        if kind == "comment":
            if c == "\n":
                self._pop()
                return self._newline(i)
            return i + 1
        if c == "\\":
            self.escaped = True
            return i + 1
        if kind == "ansi":
            if c == "'":
                self._pop()
            return i + 1
        if kind == "backquote":
            if c == "`":
                self._pop()
            return i + 1
        if c == "$" and kind in ("top", "cmd", "dq", "brace", "arith"):
            return self._dollar(text, i, kind)
        if kind == "dq":
            if c == '"':
                self._pop()
            elif c == "`":
                self._push("backquote")
            return i + 1
        if kind == "brace":
            if c == "}":
                self._pop()
            elif c in "'\"":
                self._push("sq" if c == "'" else "dq")
            elif c == "`":
                self._push("backquote")
            return i + 1
        if kind == "arith":
            if c == "(":
                frame.depth += 1
            elif c == ")":
                if frame.depth:
                    frame.depth -= 1
                elif text[i + 1 : i + 2] == ")":
                    self._pop()
                    return i + 2
            return i + 1
        return self._command_char(frame, text, i)

    def _dollar(self, text: str, i: int, kind: str) -> int:
        nxt = text[i + 1 : i + 2]
        if text[i + 1 : i + 3] == "((":
            self._push("arith")
            return i + 3
        if nxt == "(":
            self._push("cmd")
            self.word_start = True
            return i + 2
        if nxt == "{":
            self._push("brace")
            return i + 2
        if nxt == "'" and kind in ("top", "cmd"):
            self._push("ansi")
            return i + 2
        if nxt == '"' and kind in ("top", "cmd"):
            self._push("dq")
            return i + 2
        self.dollar = not nxt  # the template's text ends here: a placeholder follows
        if kind in ("top", "cmd"):
            self.word_start = False
        return i + 1

    def _command_char(self, frame: _Frame, text: str, i: int) -> int:
        """A character outside quotes: at the top level or inside ``$(...)``."""
        c = text[i]
        if c == "#" and self.word_start:
            self._push("comment")
            return i + 1
        if c == "'":
            self._push("sq")
        elif c == '"':
            self._push("dq")
        elif c == "`":
            self._push("backquote")
        elif c == "(" and frame.kind == "cmd":
            frame.depth += 1
        elif c == ")" and frame.kind == "cmd":
            if frame.depth:
                frame.depth -= 1
            else:
                self._pop()
                self.word_start = False
                return i + 1
        elif c == "<" and text[i : i + 2] == "<<" and text[i + 2 : i + 3] != "<":
            return self._heredoc_start(text, i + 2)
        elif c == "<" and text[i : i + 3] == "<<<":
            self.word_start = True
            return i + 3
        elif c == "\n":
            return self._newline(i)
        self.word_start = c in _METACHARACTERS
        return i + 1

    def _newline(self, i: int) -> int:
        self.word_start = True
        if self.heredocs:
            self.stack.append(self.heredocs.pop(0))
        return i + 1

    def _heredoc_start(self, text: str, i: int) -> int:
        strip_tabs = text[i : i + 1] == "-"
        i += strip_tabs
        while text[i : i + 1] in (" ", "\t"):
            i += 1
        start = i
        while i < len(text) and text[i] not in _METACHARACTERS:
            i += 1
        word = text[start:i]
        if not word or i == len(text):
            # The delimiter is missing or a placeholder may continue it: no telling where
            # the body ends, so everything after is treated as the body.
            word = "\0"
        # A quoted delimiter makes a literal body; either way the body is no place for a
        # value (a newline in it could end the document early), so the kind is the same.
        delimiter = word.replace("'", "").replace('"', "").replace("\\", "")
        self.heredocs.append(_Frame("heredoc", delimiter=delimiter, strip_tabs=strip_tabs))
        self.word_start = True
        return i

    def _heredoc_char(self, frame: _Frame, c: str, i: int) -> int:
        if c != "\n":
            frame.line += c
            return i + 1
        line = frame.line.lstrip("\t") if frame.strip_tabs else frame.line
        frame.line = ""
        if line == frame.delimiter:
            self._pop()
            if self.heredocs:
                self.stack.append(self.heredocs.pop(0))
        return i + 1

    # -- putting a value in ----------------------------------------------------------------
    def fix_before(self, text: str) -> str:
        """``text`` (the template up to a placeholder) with a trailing ``$`` or lone
        backslash made literal, so it cannot combine with the value that follows."""
        if self.escaped:
            self.escaped = False
            return text + "\\"  # "\" + "\" is a literal backslash wherever "\" escapes
        if self.dollar:
            self.dollar = False
            return text[:-1] + "\\$"
        return text

    def quote(self, value: str) -> str:
        """``value`` as text that bash reads back as exactly ``value``, here."""
        kind = self.kind
        if kind in ("top", "cmd"):
            self.word_start = False
            return shlex.quote(value)
        if kind == "dq":
            return re.sub(r'([\\$`"])', r"\\\1", value)
        if kind == "sq":
            return "'" + shlex.quote(value) + "'"
        if kind == "ansi":
            return "'" + shlex.quote(value) + "$'"
        if kind == "comment":
            if "\n" in value:
                raise QuotingError("a comment, which a newline in the value would end")
            return shlex.quote(value)
        if _PLAIN.fullmatch(value):
            return value
        raise QuotingError(_UNQUOTABLE[kind])

    @property
    def appendable(self) -> str | None:
        """None when words can be appended to what was fed; else why not."""
        if self.kind == "top" and not self.heredocs:
            return None
        if self.kind == "comment":
            return "the command ends in a comment"
        if self.kind == "heredoc" or self.heredocs:
            return "the command ends in a here-document"
        return "the command ends inside quotes or brackets that are not closed"
