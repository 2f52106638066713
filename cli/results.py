"""A service's result as a person reads it: images and long lists shortened, leaves on one line.

Shared by `facemarket call` and `make demo`; no terminal here, only text.
"""

from __future__ import annotations

import json
import re

BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


def readable(value: object) -> object:
    """The result for a person: base64 images, long number lists and point lists shortened."""
    if isinstance(value, dict):
        return {k: readable(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > 8 and all(isinstance(v, (int, float)) for v in value):
            return f"[{', '.join(f'{v:.3f}' for v in value[:4])}, … {len(value)} numbers]"
        if len(value) > 8 and all(isinstance(v, dict) and set(v) == {"x", "y"} for v in value):
            shown = " ".join(f"({v['x']},{v['y']})" for v in value[:4])
            return f"{shown} … {len(value)} points"
        return [readable(v) for v in value]
    if isinstance(value, str) and len(value) > 100 and BASE64.fullmatch(value):
        return f"<{len(value)} characters of base64>"
    return value


def pretty(value: object, indent: int = 0) -> str:
    """JSON with leaf objects and lists on one line: a box or a point reads as one line."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict) and any(isinstance(v, (dict, list)) for v in value.values()):
        items = [f"{pad}{json.dumps(k)}: {pretty(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [f"{pad}{pretty(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(value, ensure_ascii=False)
