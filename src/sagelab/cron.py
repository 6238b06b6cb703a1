"""AWS cron expressions, as monitoring schedules take them: `cron(minutes hours day-of-month month day-of-week year)`.

Fields take `*` and `?`, numbers, ranges (`9-17`), steps (`0/6`, `*/2`), lists (`0,30`), and the names
JAN-DEC and SUN-SAT; day-of-week counts SUN as 1, as AWS does. Times are UTC. Standard library only:
the endpoint supervisor reads it once a minute.
"""

from __future__ import annotations

import re
from datetime import datetime

from sagelab.errors import EndpointError

_MONTHS = {name: number for number, name in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)}
_DAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
_NONE: dict[str, int] = {}
_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = ((0, 59, _NONE), (0, 23, _NONE), (1, 31, _NONE), (1, 12, _MONTHS), (1, 7, _DAYS),
                                                        (1970, 2199, _NONE))  # fmt: skip


def check_expression(expression: str) -> str:
    """`cron(...)` with six fields (minutes hours day-of-month month day-of-week year), or NOW; the same back, else an EndpointError."""
    if expression.strip().upper() == "NOW":
        return "NOW"
    match = re.fullmatch(r"\s*cron\((.*)\)\s*", expression)
    fields = match[1].split() if match else []
    if len(fields) != 6:
        raise EndpointError(f"ScheduleExpression {expression!r} must be cron() of six fields (minutes hours day-of-month month "
                            "day-of-week year), for example cron(0 * ? * * *) for every hour, or NOW")  # fmt: skip
    for text, (low, high, names) in zip(fields, _FIELDS):
        _values(text, low, high, names, expression)
    return expression


def cron_matches(expression: str, moment: datetime) -> bool:
    """Whether the minute of `moment` (UTC) is one the cron expression names."""
    match = re.fullmatch(r"\s*cron\((.*)\)\s*", expression)
    if not match:
        return False
    fields = match[1].split()
    weekday = (moment.isoweekday() % 7) + 1  # SUN=1 ... SAT=7, as AWS counts
    actual = (moment.minute, moment.hour, moment.day, moment.month, weekday, moment.year)
    return all(value in _values(text, low, high, names, expression) for text, value, (low, high, names) in zip(fields, actual, _FIELDS))


def _values(text: str, low: int, high: int, names: dict[str, int], expression: str) -> set[int]:
    if text in ("*", "?"):
        return set(range(low, high + 1))
    found: set[int] = set()
    for part in text.upper().split(","):
        base, _, step = part.partition("/")
        if base in ("*", ""):
            start, end = low, high
        elif "-" in base:
            start, end = (_number(n, names, expression) for n in base.split("-", 1))
        else:
            start = _number(base, names, expression)
            end = high if step else start
        every = _number(step, {}, expression) if step else 1
        if not (low <= start <= high and low <= end <= high) or every < 1:
            raise EndpointError(f"ScheduleExpression {expression!r}: {part!r} is outside {low}-{high}")
        found.update(range(start, end + 1, every))
    return found


def _number(text: str, names: dict[str, int], expression: str) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise EndpointError(f"ScheduleExpression {expression!r}: {text!r} is not a number")
    return int(text)
