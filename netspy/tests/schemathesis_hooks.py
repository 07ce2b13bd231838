"""Teaches schemathesis the two request rules netspy's schemas state in words, because JSON
Schema cannot compare two fields or parse a glob:

- `until` must be after `since` (netspy answers 400 "until must be after since");
- a `command`/`process_name`/`unit`/`container` with `*`, `?` or `[` is a glob and must
  parse as one (400 saying why otherwise). Names with only `*` and `?` always do, so only
  cases that also contain one of `[ ] { } \\` are left out of the "valid" ones; those globs
  are tested by netspy's own tests, and negative mode still sends them.

Everything else a schema allows must be answered 2xx: positive_data_acceptance runs too.
"""

import re

import schemathesis

_INSTANT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _nanos(text):
    """Nanoseconds since 0001-01-01 of an RFC 3339 instant, or None when it is not one."""
    match = _INSTANT.match(text) if isinstance(text, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or ".0")[1:]
    nanos = int((fraction + "000000000")[:9])
    offset = 0
    zone = match.group(8)
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    # Days from the civil date (proleptic Gregorian), without datetime's year limits.
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1_000_000_000 + nanos


def _keep(params):
    if not isinstance(params, dict):
        return True
    since, until = _nanos(params.get("since")), _nanos(params.get("until"))
    if since is not None and until is not None and until <= since:
        return False
    for field in ("command", "process_name", "unit", "container"):
        name = params.get(field)
        if isinstance(name, str) and any(c in name for c in "*?[") and any(
            c in name for c in "[]{}\\"
        ):
            return False
    return True


# Query and body filters, not `filter_case`: a case hook makes the fuzzing phase ignore
# --max-examples and run until --max-time. The coverage phase skips these filters; it takes
# since and until from the schema's examples, which are in order.
@schemathesis.hook
def filter_query(ctx, query):
    return _keep(query)


@schemathesis.hook
def filter_body(ctx, body):
    return _keep(body)
