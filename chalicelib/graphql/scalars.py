"""AppSync's AWS scalars, validated at the API's edge.

A value that reaches the table is later typed into the lake (an ``AWSDateTime`` becomes
a Parquet timestamp), so anything the lake could not read is refused here, with a
message saying what was expected, instead of failing later in the stream handler.

Parsers raise ``ValueError``: graphql-core then reports the error with the location of
an inline literal, or the path of the variable, that held the bad value.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from ariadne import ScalarType

from chalicelib import keys
from chalicelib.messages import shown

# AppSync's formats are ISO-8601's extended forms; the basic and week forms are refused.
_ZONE = r"(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?)"
_TIME = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?"
_DATE = r"\d{4}-\d{2}-\d{2}"
_DATETIME_FORMAT = re.compile(rf"{_DATE}T{_TIME}{_ZONE}")
_DATE_FORMAT = re.compile(rf"({_DATE}){_ZONE}?")
_TIME_FORMAT = re.compile(rf"{_TIME}{_ZONE}?")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{2,}")


def _expect_string(kind: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{kind} must be a string, got {shown(value)}")
    return value


def parse_aws_datetime(value: Any) -> str:
    """ISO-8601 with a time zone; normalised to UTC with milliseconds and ``Z``.

    Normalising makes stored values sort and compare as text, like ``createdAt``.
    """
    text = _expect_string("AWSDateTime", value)
    try:
        if not _DATETIME_FORMAT.fullmatch(text):
            raise ValueError
        return keys.timestamp_text(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        raise ValueError(
            "AWSDateTime must be a valid date and time with a time zone, "
            f"e.g. 2026-11-23T19:22:14.123Z; got {shown(text)}"
        ) from None


def _parse_aws_date(value: Any) -> str:
    """``YYYY-MM-DD`` with AppSync's optional zone offset (``1970-01-01Z``)."""
    text = _expect_string("AWSDate", value)
    match = _DATE_FORMAT.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        date.fromisoformat(match.group(1))
    except ValueError:
        raise ValueError(f"AWSDate must be a valid YYYY-MM-DD[offset], got {shown(text)}") from None
    return text


def _parse_aws_time(value: Any) -> str:
    text = _expect_string("AWSTime", value)
    if not _TIME_FORMAT.fullmatch(text):
        raise ValueError(f"AWSTime must be hh:mm[:ss[.sss]][offset], got {shown(text)}")
    return text


def _parse_aws_timestamp(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"AWSTimestamp must be whole seconds since the epoch, got {shown(value)}")
    return value


def _parse_aws_json(value: Any) -> str:
    text = _expect_string("AWSJSON", value)
    try:
        json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise ValueError(f"AWSJSON must be a JSON document in a string: {error}") from None
    return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _pattern_parser(kind: str, pattern: re.Pattern[str], example: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _expect_string(kind, value)
        if not pattern.fullmatch(text):
            raise ValueError(f"{kind} must look like {example}, got {shown(text)}")
        return text

    return parse


def _parse_aws_ip_address(value: Any) -> str:
    text = _expect_string("AWSIPAddress", value)
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"AWSIPAddress must be an IPv4 or IPv6 address, got {shown(text)}"
        ) from None
    return text


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "AWSDateTime": parse_aws_datetime,
    "AWSDate": _parse_aws_date,
    "AWSTime": _parse_aws_time,
    "AWSTimestamp": _parse_aws_timestamp,
    "AWSJSON": _parse_aws_json,
    "AWSEmail": _pattern_parser("AWSEmail", _EMAIL, "name@example.com"),
    "AWSURL": _pattern_parser("AWSURL", _URL, "https://example.com/path or mailto:a@b.co"),
    "AWSPhone": _pattern_parser("AWSPhone", _PHONE, "+1 555 0100"),
    "AWSIPAddress": _parse_aws_ip_address,
}


def aws_scalars(names: tuple[str, ...]) -> list[ScalarType]:
    """Bindings for those AWS scalars the public schema declares."""
    bindings = []
    for name in names:
        parser = _PARSERS.get(name)
        if parser is not None:
            bindings.append(ScalarType(name, value_parser=parser))
    return bindings
