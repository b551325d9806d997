"""Integer query parameters, parsed one way for every page and poll.

`int()` is the wrong parser for a URL: it accepts any Unicode digit ('٣' is 3, '१' is 1), underscores
('1_000'), signs and surrounding spaces, and raises on superscripts ('²'.isdigit() is True, int('²')
fails) and on more than 4300 digits. A parameter here is ASCII digits only, within bounds; anything
else is the default, never an error.
"""

from __future__ import annotations

import re

from django.http import QueryDict

_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")  # up to a bigint's width; longer is out of any bound
BIGINT_MAX = 2**63 - 1


def int_param(
    query: QueryDict, name: str, default: int | None = 0, *, minimum: int = 0, maximum: int = BIGINT_MAX
) -> int | None:
    """The integer in `query[name]` if it is ASCII digits within [minimum, maximum], else `default`."""
    value = query.get(name)
    if value is None or not _ASCII_DIGITS.fullmatch(value):
        return default
    number = int(value)
    return number if minimum <= number <= maximum else default
