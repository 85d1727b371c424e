"""The one validator of numeric options: seconds, gains and decibels, with expected-vs-got messages."""

from __future__ import annotations

import math

from ._errors import InvalidAudioError

__all__ = ["check_number"]


def check_number(
    name: str,
    value: object,
    *,
    unit: str,
    low: float = 0.0,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a real number in range, else raise.

    Args:
        name: the option's name, for the message.
        value: what the caller passed.
        unit: the unit shown in the message (``"seconds"``, ``"dB"``, ``"linear gain"``).
        low: smallest accepted value (``None`` is never accepted here; callers that take
            ``None`` check it first).
        high: largest accepted value, or None for no upper bound.
        low_open: refuse ``low`` itself (a strictly positive duration).

    Raises:
        InvalidAudioError: ``value`` is a bool, not an int or float, NaN, infinite, or
            out of range; the message names the range and what was got.
    """
    shown = f"{'>' if low_open else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidAudioError(f"expected {name} as a number {shown} {unit}, got {type(value).__name__} {value!r}")
    number = float(value)
    too_low = number < low or (low_open and number == low)
    if not math.isfinite(number) or too_low or (high is not None and number > high):
        raise InvalidAudioError(f"expected {name} {shown} {unit}, got {value!r}")
    return number
