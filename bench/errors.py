"""The one error type users see: a one-line message and exit status 2, never a traceback."""

import difflib


class BenchError(Exception):
    """A problem with the user's input or environment, reported as one line."""

    exit_code = 2


def unknown(kind: str, value, valid) -> BenchError:
    """`unknown model 'phi15'; did you mean 'phi-1.5'? (valid: ...)`"""
    valid = sorted(str(v) for v in valid)
    lower = {v.lower(): v for v in valid}  # `GA` is a typo of `ga`; `ga` of `ga+lora-r4` (a prefix, too short for difflib)
    typed = str(value).lower()
    close = difflib.get_close_matches(typed, list(lower), n=1, cutoff=0.5) or \
        [k for k in lower if typed and k.startswith(typed)][:1]
    hint = f"; did you mean '{lower[close[0]]}'?" if close else ""
    return BenchError(f"unknown {kind} '{value}'{hint} (valid: {', '.join(valid)})" if valid else
                      f"unknown {kind} '{value}' (there is none)")


def parse_list(text: str | None, kind: str = "value") -> list[str]:
    """`a,b,c` as a list; None: []. An empty entry (`4,,8`, `ga,`, or an empty string) or a repeated one is a
    one-line BenchError: it is a typo, and a repeated seed would name one run twice."""
    if text is None:
        return []
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise BenchError(f"bad {kind} list {text!r}: an empty entry (expected {kind}s separated by commas)")
    repeated = next((t for i, t in enumerate(items) if t in items[:i]), None)
    if repeated is not None:
        raise BenchError(f"{kind} {repeated!r} appears twice in {text!r}")
    return items
