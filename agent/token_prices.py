"""Prices in the agent's config: token units as before, or tokens as the CLI speaks them.

`price = 1000000` (units, the smallest amount: old configs keep working) and `price = "0.01 FACE"`
(tokens, with the symbol: a bare "0.01" is refused, as it could mean either) are the same price.
The token is FaceToken, whose symbol and decimals are constants of its contract (FACE, 8).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

TOKEN_SYMBOL = "FACE"  # FaceToken.sol: ERC20("facemarket token", "FACE")
TOKEN_DECIMALS = 8     # FaceToken.sol: decimals() is pure and returns 8

_TOKENS = re.compile(r"^\s*(\S+)\s+([A-Za-z]+)\s*$")


def price_units(value: object) -> int:
    """Token units of a config price: a whole number of units, or "AMOUNT FACE"; ValueError says
    how to write it. (The sign is the caller's to check, with the key's name.)"""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"write a price as whole token units (1000000) or as tokens with the "
                         f"symbol (\"0.01 {TOKEN_SYMBOL}\"), not {value!r}")
    if isinstance(value, int | float):
        units = int(value)
    else:
        text = str(value).strip()
        match = _TOKENS.match(text)
        if match is None:
            if not text.lstrip("-").isdigit():
                raise ValueError(f"{text!r} is neither token units (a whole number, e.g. 1000000) nor "
                                 f"tokens with the symbol (e.g. \"0.01 {TOKEN_SYMBOL}\")")
            units = int(text)
        else:
            units = _tokens_to_units(*match.groups())
    return units


def _tokens_to_units(amount: str, symbol: str) -> int:
    if symbol.upper() != TOKEN_SYMBOL:
        raise ValueError(f"{amount} {symbol}: the token is {TOKEN_SYMBOL}")
    try:
        units = Decimal(amount).scaleb(TOKEN_DECIMALS)
    except InvalidOperation:
        units = Decimal("nan")
    if not units.is_finite():
        raise ValueError(f"{amount!r} is not an amount of {TOKEN_SYMBOL} (e.g. 0.01)")
    if units != units.to_integral_value():
        raise ValueError(f"{amount} {TOKEN_SYMBOL}: at most {TOKEN_DECIMALS} decimals")
    return int(units)
