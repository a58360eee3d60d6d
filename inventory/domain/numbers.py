"""One number format on every path (REST, stream, board, CSV)."""

from __future__ import annotations

from decimal import Decimal


def plain_number(value: Decimal) -> str:
    """A Decimal as a JSON number in plain notation, all its digits, no trailing zeros.

    DynamoDB drops trailing zeros and the source keeps them, so the same figure
    reads the same on every endpoint only once both are normalised; str() would
    write 2.584652E-7 (valid JSON a client might still parse as a float or a
    string). `format(..., "f")` keeps every digit (Decimal.normalize() would round
    to the context's 28).
    """
    text = str(value)
    if "E" in text or (text[-1] == "0" and "." in text) or text == "-0":
        text = format(value, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text == "-0":
            text = "0"
    return text
