"""Durations for people: as they type them (90, 90s, 30m, 2h, 7d) and as they read them."""

from __future__ import annotations

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def describe(seconds: int) -> str:
    """'in 59m 3s' / '2h 1m ago' — when a job expires, relative to the chain's clock."""
    ago, seconds = seconds < 0, abs(seconds)
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m"),
             (seconds % 60, "s")]
    shown = [f"{n}{u}" for n, u in parts if n][:2]  # the two largest units say enough
    text = " ".join(shown) or "0s"
    return f"{text} ago" if ago else f"in {text}"


def utc(timestamp: int) -> str:
    """'2026-12-02 07:12:05 UTC': a chain timestamp as people read it, never a raw number."""
    import datetime as dt
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
