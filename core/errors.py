"""The user-facing error type and the one-line form of any exception."""

from __future__ import annotations

# Longest cause kept in a one-line message: enough for Keras's or OpenCV's reason, short
# enough that a layer config pasted into an exception does not fill the terminal.
MAX_CAUSE = 300


class HemifaceError(Exception):
    """A user-facing error: the message is the whole story, no traceback needed."""

    exit_code: int = 2


def shorten(text: str, limit: int = MAX_CAUSE) -> str:
    """`text` on one line (whitespace runs collapsed), at most `limit` characters (cut
    with "...")."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def one_line(exc: BaseException, limit: int = MAX_CAUSE) -> str:
    """`exc`'s message on one line, at most `limit` characters; the exception's class name
    when the message is empty."""
    return shorten(str(exc), limit) or type(exc).__name__


# C0 and C1 control characters and DEL, but newline and tab: a file name holding ESC
# sequences would otherwise move the cursor, recolour or retitle the user's terminal.
_CONTROLS = {
    code: f"\\x{code:02x}"
    for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)]
    if chr(code) not in "\n\t"
}


def printable(text: str) -> str:
    """`text` with control characters shown as \\xNN escapes, safe to print to a terminal."""
    return text.translate(_CONTROLS)
