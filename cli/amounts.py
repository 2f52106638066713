"""Token amounts: people type and read whole tokens ("0.5"), the chain counts units (8 decimals)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from facemarket.cli.errors import FacemarketError


def parse_amount(text: str, decimals: int) -> int:
    """'1.5' -> 150000000 units (8 decimals); refuses what the token cannot represent."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise FacemarketError(f"not an amount: {text!r}", "write tokens as a decimal, e.g. 0.5") from None
    units = value.scaleb(decimals)
    if value < 0 or units != units.to_integral_value():
        raise FacemarketError(f"not an amount: {text!r}",
                              f"a positive number with at most {decimals} decimals")
    return int(units)


def format_amount(units: int, decimals: int, symbol: str = "") -> str:
    """150000000 units -> '1.5 FACE'."""
    text = format(Decimal(units).scaleb(-decimals).normalize(), "f")
    return f"{text} {symbol}".rstrip()
