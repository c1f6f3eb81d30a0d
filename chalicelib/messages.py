"""How an error message repeats a client's value: enough to recognise it, never all of
a megabyte someone sent."""

from __future__ import annotations

# How much of a bad value an error message repeats.
ECHO_CHARACTERS = 40


def shown(value: object) -> str:
    """``repr`` of ``value``, cut to a short prefix."""
    if isinstance(value, str) and len(value) > ECHO_CHARACTERS:
        return repr(value[:ECHO_CHARACTERS] + "…")
    text = repr(value)
    return text if len(text) <= ECHO_CHARACTERS + 2 else text[: ECHO_CHARACTERS + 2] + "…"
