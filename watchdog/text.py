"""Free text from people (merchant references, operator notes and reasons, token names):
printable characters only, and escaped for whatever format a sink interprets.

A reference holding ``ESC[2J`` cleared an operator's terminal in ``show``; a newline forged
a second line in a page; a Slack message rendered ``<!channel>`` as a mention. So control
and format characters (Unicode categories Cc, Cf, and the line/paragraph separators Zl, Zp)
are refused where text comes in, and Slack's three markup characters are escaped where it
goes out.
"""

from __future__ import annotations

import unicodedata

from watchdog.errors import ValidationError

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def refused_character(value: str) -> str | None:
    """The first control or format character of ``value`` (as ``U+XXXX``), or None."""
    for char in value:
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def printable(field: str, value: str) -> str:
    """``value`` unchanged when every character is printable; else a ValidationError naming
    ``field`` and the first offending character (never the text itself)."""
    bad = refused_character(value)
    if bad is not None:
        raise ValidationError(
            field, f"contains the control or format character {bad}; use printable text only")
    return value


def visible(text: str) -> str:
    """``text`` for a terminal: control and format characters shown as ``\\uXXXX`` escapes
    (rows stored before they were refused must not drive the operator's terminal)."""
    if refused_character(text) is None:
        return text
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in REFUSED_CATEGORIES else c
                   for c in text)


def slack_escaped(text: str) -> str:
    """``text`` as literal Slack mrkdwn: ``&``, ``<`` and ``>`` escaped, so a merchant's
    reference can neither mention ``<!channel>`` nor forge a ``<link|label>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
