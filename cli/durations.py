"""Durations as people type them: 90, 90s, 30m, 2h, 7d."""

from __future__ import annotations

import click

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        unit = UNITS.get(text[-1:], None)
        number = text[:-1] if unit else text
        try:
            seconds = int(float(number) * (unit or 1))
        except ValueError:
            self.fail(f"{value!r} is not a duration (e.g. 90, 30m, 2h, 7d)", param, ctx)
        if seconds <= 0:
            self.fail(f"{value!r} must be positive", param, ctx)
        return seconds


def describe(seconds: int) -> str:
    """'in 59m 3s' / '2h 1m ago' — when a job expires, relative to the chain's clock."""
    ago, seconds = seconds < 0, abs(seconds)
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m"),
             (seconds % 60, "s")]
    shown = [f"{n}{u}" for n, u in parts if n][:2]  # the two largest units say enough
    text = " ".join(shown) or "0s"
    return f"{text} ago" if ago else f"in {text}"
