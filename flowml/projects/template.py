"""Command templates: where each ``{name}`` placeholder sits in the shell command, and how a
value gets there without ever becoming shell code.

A value is never pasted into the command text. Each placeholder becomes a reference to an
environment variable holding the value, quoted for the position it is in::

    python train.py --alpha {alpha}        ->  python train.py --alpha "${FLOWML_PARAM_0}"
    echo "lr={alpha} done"                 ->  echo "lr=${FLOWML_PARAM_0} done"
    echo 'lr={alpha}'                      ->  echo 'lr='"${FLOWML_PARAM_0}"''

The shell parses the command before expanding the variable, and never parses an expansion's
result again, so ``$(...)``, backquotes, quotes, ``;`` or newlines in a value arrive as
plain characters, whatever the quoting around the placeholder. Two things the scanner cannot
make safe are refused with the entry point named: a placeholder after a here-document
operator (``<<``), or right after a backslash; and a placeholder of a ``string``, ``path`` or
``uri`` parameter where bash evaluates text as arithmetic or as a variable name (``$(( ))``,
``(( ))``, ``$[ ]``, ``[[ ]]``, ``${...}``, an array subscript, ``let``, ``declare``,
``typeset``, ``local``, ``read``, ``readarray``, ``mapfile``, ``unset``, and ``printf``,
``test`` or ``[`` with ``-v``), since evaluating ``a[$(cmd)]`` runs ``cmd``. Commands that run
their argument on purpose (``eval``, ``sh -c``, ``python -c``) are the template's choice.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Slot", "TemplateError", "scan", "variable_name"]

_EVALUATING_COMMANDS = frozenset(
    {"let", "declare", "typeset", "local", "read", "readarray", "mapfile", "unset"}
)
_EVALUATING_WITH_V = frozenset({"printf", "test", "["})
_PREFIX_WORDS = frozenset({"builtin", "command"})
# Marks a placeholder inside a word, so the word never reads as a literal command name.
_HOLE = "\0"


class TemplateError(ValueError):
    """A placeholder sits where no quoting keeps its value from running (``reason`` says why)."""


@dataclass(frozen=True)
class Slot:
    """One placeholder and the shell context around it.

    Attributes:
        name: The parameter's name.
        quoting: ``bare``, ``double``, ``single``, ``ansi`` (``$'...'``) or ``comment``.
        evaluated: Why bash would evaluate the text here (arithmetic, a variable name), or
            ``None``.
    """

    name: str
    quoting: str
    evaluated: str | None = None

    def reference(self, variable: str) -> str:
        """The shell text that expands to ``$variable`` as exactly one word, here."""
        quoted = f'"${{{variable}}}"'
        if self.quoting == "double":
            return f"${{{variable}}}"
        if self.quoting == "single":
            return f"'{quoted}'"  # close the quote, expand, reopen
        if self.quoting == "ansi":
            return f"'{quoted}$'"
        return quoted


def variable_name(index: int) -> str:
    """The environment variable holding the value of the ``index``-th placeholder name."""
    return f"FLOWML_PARAM_{index}"


# The opening and closing characters of the frames that count their nesting depth.
_BRACKETS = {"arith": ("(", ")"), "arith_br": ("[", "]"), "brace": ("{", "}")}


@dataclass
class _Frame:
    kind: str  # cmd, bq, dq, sq, ansi, arith, arith_br, brace, test, comment
    depth: int = 0
    sub: bool = False  # a $( ... ) command substitution: ``)`` may close it
    words: list[str] = field(default_factory=list)
    word: str = ""
    bracket: bool = False  # the word has an unquoted ``[``: a subscript, in an assignment


@dataclass
class _Scanner:
    frames: list[_Frame] = field(default_factory=lambda: [_Frame("cmd")])
    escape: bool = False
    heredoc: bool = False

    @property
    def clean_end(self) -> bool:
        """Whether text appended now would start a new word of the top-level command."""
        return len(self.frames) == 1 and not self.escape and not self.heredoc

    def _command_frame(self) -> _Frame:
        return next(f for f in reversed(self.frames) if f.kind in ("cmd", "bq", "test"))

    def _add(self, char: str) -> None:
        self._command_frame().word += char

    def _end_word(self, frame: _Frame, *, new_command: bool = False) -> None:
        if frame.word:
            frame.words.append(frame.word)
            frame.word = ""
        frame.bracket = False
        if new_command:
            frame.words = []

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            i = self._step(text, i)

    def _step(self, text: str, i: int) -> int:  # noqa: C901, PLR0911, PLR0912 - one shell lexer
        char, top = text[i], self.frames[-1]
        if self.escape:
            self.escape = False
            self._add(char)
            return i + 1
        if top.kind == "comment":
            if char == "\n":
                self.frames.pop()
                self._end_word(self.frames[-1], new_command=True)
            return i + 1
        if top.kind in ("sq", "ansi"):
            if char == "\\" and top.kind == "ansi":
                self.escape = True
            elif char == "'":
                self.frames.pop()
            self._add(char)
            return i + 1
        if top.kind == "dq":
            if char == "\\":
                self.escape = True
            elif char == '"':
                self.frames.pop()
            elif char in "$`":
                return self._expansion(text, i, in_double=True)
            self._add(char)
            return i + 1
        if char == "\\":
            self.escape = True
            self._add(char)
            return i + 1
        if char in "'\"":
            self.frames.append(_Frame("sq" if char == "'" else "dq"))
            self._add(char)
            return i + 1
        if char in "$`":
            return self._expansion(text, i, in_double=False)
        if top.kind in ("arith", "arith_br", "brace"):
            opener, closer = _BRACKETS[top.kind]
            top.depth += (char == opener) - (char == closer)
            if top.depth == 0:
                self.frames.pop()
            return i + 1
        return self._command_char(top, text, i)

    def _expansion(self, text: str, i: int, *, in_double: bool) -> int:
        if text[i] == "`":
            if self.frames[-1].kind == "bq":
                self.frames.pop()
            else:
                self._add(_HOLE)  # the enclosing word is no longer a literal
                self.frames.append(_Frame("bq"))
            return i + 1
        rest = text[i + 1 : i + 3]
        if rest.startswith("(("):
            self._add(_HOLE)
            self.frames.append(_Frame("arith", depth=2))
            return i + 3
        opening = {"(": _Frame("cmd", depth=1, sub=True), "{": _Frame("brace", depth=1)}
        opening["["] = _Frame("arith_br", depth=1)
        if not in_double:
            opening["'"], opening['"'] = _Frame("ansi"), _Frame("dq")
        frame = opening.get(rest[:1])
        if frame is None:
            self._add("$")
            return i + 1
        self._add(_HOLE)
        self.frames.append(frame)
        return i + 2

    def _command_char(self, frame: _Frame, text: str, i: int) -> int:  # noqa: PLR0911
        char, ahead = text[i], text[i + 1 : i + 3]
        at_start = not frame.words and not frame.word
        if char in " \t":
            self._end_word(frame)
        elif char in "\n;&|":
            self._end_word(frame, new_command=True)
        elif char == "#" and not frame.word:
            self.frames.append(_Frame("comment"))
        elif char == "<" and ahead[:1] == "<" and ahead[1:2] != "<":
            self.heredoc = True
            self._end_word(frame)
        elif char in "<>":
            self._end_word(frame)
        elif char == "(" and ahead[:1] == "(" and at_start and frame.kind != "test":
            self.frames.append(_Frame("arith", depth=2))
            return i + 2
        elif char == "(":
            frame.depth += 1
            self._end_word(frame, new_command=True)
        elif char == ")":
            self._end_word(frame, new_command=True)
            frame.depth -= 1
            if frame.sub and frame.depth == 0:
                self.frames.pop()
        elif char == "[" and ahead[:1] == "[" and at_start and frame.kind != "test":
            self.frames.append(_Frame("test"))
            return i + 2
        elif char == "]" and ahead[:1] == "]" and frame.kind == "test" and not frame.word:
            self.frames.pop()
            return i + 2
        else:
            frame.word += char
            frame.bracket = frame.bracket or char == "["
        return i + 1

    def slot(self, name: str) -> Slot:
        if self.escape:
            raise TemplateError(f"{{{name}}} follows a backslash, which would escape its quoting")
        if self.heredoc:
            raise TemplateError(
                f"{{{name}}} comes after a here-document (<<), whose body the shell expands"
            )
        kinds = [f.kind for f in self.frames]
        quoting = {"dq": "double", "sq": "single", "ansi": "ansi", "comment": "comment"}
        slot = Slot(name, quoting.get(kinds[-1], "bare"), self._evaluated(kinds))
        self._add(_HOLE)
        return slot

    def _evaluated(self, kinds: list[str]) -> str | None:
        if "arith" in kinds or "arith_br" in kinds:
            return "inside an arithmetic expression ($(( )), (( )) or $[ ])"
        if "test" in kinds:
            return "inside [[ ]], which evaluates -eq/-lt/... operands as arithmetic"
        if "brace" in kinds:
            return "inside a ${...} expansion"
        frame = self._command_frame()
        if kinds[-1] == "comment":
            return None
        if frame.bracket:
            return "inside an array subscript"
        words = [w for w in frame.words if _HOLE not in w]
        words = [w.strip("'\"") for w in words if "=" not in w.split("[")[0]]
        while words and words[0] in _PREFIX_WORDS:
            words.pop(0)
        if not words:
            return None
        if words[0] in _EVALUATING_COMMANDS:
            return f"in an argument of `{words[0]}`, which bash reads as a variable name"
        if words[0] in _EVALUATING_WITH_V and "-v" in words[1:]:
            return f"in `{words[0]} -v`, which bash reads as a variable name"
        return None


def scan(command: str, numeric: Mapping[str, bool]) -> tuple[list[tuple[str, Slot | None]], bool]:
    """Split ``command`` into literal text and placeholders, each with its shell context.

    Args:
        command: The command template (``{{``/``}}`` are literal braces).
        numeric: For each parameter, whether it is an ``int`` or ``float`` (whose values are
            digits, safe even where bash evaluates text).

    Returns:
        ``(pieces, clean_end)``: ``(literal, slot)`` pairs (``slot`` ``None`` for the trailing
        text), and whether the template ends where more words can be appended.

    Raises:
        TemplateError: A placeholder sits where no quoting makes its value inert.
        ValueError: The template is not a valid format string.
    """
    scanner = _Scanner()
    pieces: list[tuple[str, Slot | None]] = []
    for literal, name, _, _ in string.Formatter().parse(command):
        scanner.feed(literal)
        slot = None
        if name is not None:
            slot = scanner.slot(name)
            if slot.evaluated and not numeric.get(name, False):
                raise TemplateError(
                    f"{{{name}}} is {slot.evaluated}, where bash would run a $(...) in its "
                    "value; use the value in the script instead, or declare the parameter "
                    "int or float"
                )
        pieces.append((literal, slot))
    return pieces, scanner.clean_end
