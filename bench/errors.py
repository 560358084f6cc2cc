"""The one error type users see: a one-line message and exit status 2, never a traceback."""

import difflib


class BenchError(Exception):
    """A problem with the user's input or environment, reported as one line."""

    exit_code = 2


def unknown(kind: str, value, valid) -> BenchError:
    """`unknown model 'phi15'; did you mean 'phi-1.5'? (valid: ...)`"""
    valid = sorted(str(v) for v in valid)
    close = difflib.get_close_matches(str(value), valid, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return BenchError(f"unknown {kind} '{value}'{hint} (valid: {', '.join(valid)})")
