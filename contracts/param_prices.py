"""How a call's parameters are matched against parameter prices ("find_face:algorithm=dlib_cnn").

Why not plain equality: the price must never be below what the service runs, and a service may
read a value more loosely than a string comparison (1, 1.0 and "1" as one number; " DLIB_CNN "
as dlib_cnn). So a value and a price's value are both brought to one canonical text first; a
value that has no such text (a list, an object) matches every price of its parameter, so the
dearest applies. An absent (or null) parameter is priced as the default the spec gives it: the
service runs its default, and the default may be the priced value. The agent (its gate and its
`/spec`) and the client both price with this module, so they quote the same price.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def canonical(value: Any) -> str | None:
    """The text a parameter value is compared by; None when it has none (a list, an object)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_text(value)
    if isinstance(value, str):
        text = value.strip().casefold()
        return _number_text(float(text)) if _NUMBER.fullmatch(text) else text
    return None


def _number_text(number: int | float) -> str:
    """1, 1.0, 1e0 -> "1"; 0.5 -> "0.5" (ints too long for a float keep their digits)."""
    try:
        as_float = float(number)
    except OverflowError:
        return str(number)
    if not math.isfinite(as_float):
        return str(as_float)
    return str(int(as_float)) if as_float.is_integer() else repr(as_float)


def matches(value: Any, priced: str) -> bool:
    """Whether a call's value of a parameter pays that parameter's price for `priced`."""
    text = canonical(value)
    return text is None or text == canonical(priced)


def named_values(params: Any, defaults: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The parameters the service will run with: the call's named ones over the defaults
    (null counts as absent); None when params are not an object (cannot be read by name)."""
    if params is not None and not isinstance(params, dict):
        return None
    given = {name: value for name, value in (params or {}).items() if value is not None}
    return {**(defaults or {}), **given}


def highest(base: int, variants: Iterable[tuple[str, str, int]], params: Any,
            defaults: Mapping[str, Any] | None = None) -> int:
    """The price of a call: `base` raised by every matching (param, value, price) variant; every
    variant matches params that are not an object (the agent refuses those anyway)."""
    values = named_values(params, defaults)
    return max([base, *(price for name, priced, price in variants
                        if values is None or (name in values and matches(values[name], priced)))])


def openrpc_defaults(method: Mapping[str, Any]) -> dict[str, Any]:
    """{param: default} of one OpenRPC method entry (its params' `schema.default`)."""
    return {param["name"]: param["schema"]["default"] for param in method.get("params", [])
            if isinstance(param, dict) and isinstance(param.get("name"), str)
            and isinstance(param.get("schema"), dict) and "default" in param["schema"]}
