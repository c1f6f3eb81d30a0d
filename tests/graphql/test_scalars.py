"""AWS scalars as a client meets them: in variables and in inline literals."""

from typing import Any

import pytest
from ariadne import QueryType, graphql_sync, make_executable_schema

from chalicelib.graphql.scalars import aws_scalars, parse_aws_datetime

SCALARS = (
    "AWSDateTime",
    "AWSDate",
    "AWSTime",
    "AWSTimestamp",
    "AWSJSON",
    "AWSEmail",
    "AWSURL",
    "AWSPhone",
    "AWSIPAddress",
)


def echo_schema() -> Any:
    """A schema whose fields return the argument they were given, after coercion."""
    declarations = "\n".join(f"scalar {name}" for name in SCALARS)
    fields = "\n".join(f"  echo{name}(value: {name}!): {name}" for name in SCALARS)
    query = QueryType()
    for name in SCALARS:
        query.set_field(f"echo{name}", lambda _, __, value: value)
    return make_executable_schema(
        f"{declarations}\ntype Query {{\n{fields}\n}}", query, *aws_scalars(SCALARS)
    )


SCHEMA = echo_schema()


def echo(scalar: str, value: object) -> dict[str, Any]:
    query = f"query ($v: {scalar}!) {{ echo{scalar}(value: $v) }}"
    _, result = graphql_sync(SCHEMA, {"query": query, "variables": {"v": value}})
    return result


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-11-23T19:22:14.123Z", "2026-11-23T19:22:14.123Z"),
        ("2026-11-23T19:22:14Z", "2026-11-23T19:22:14.000Z"),
        ("2026-11-23T20:22:14.5+01:00", "2026-11-23T19:22:14.500Z"),
    ],
)
def test_datetimes_are_normalised_to_utc_milliseconds(given: str, stored: str) -> None:
    assert parse_aws_datetime(given) == stored
    assert echo("AWSDateTime", given) == {"data": {"echoAWSDateTime": stored}}


@pytest.mark.parametrize(
    "given",
    [
        "2026-11-23",
        "2026-11-23T19:22:14",
        "yesterday",
        5,
        "2026-02-30T00:00:00Z",
        "20260101T000000Z",
        "2026-W01-1T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
    ],
)
def test_datetimes_that_are_not_valid_zoned_iso_8601_are_refused(given: object) -> None:
    with pytest.raises(ValueError, match="AWSDateTime must be"):
        parse_aws_datetime(given)
    assert "AWSDateTime must be" in echo("AWSDateTime", given)["errors"][0]["message"]


def test_a_bad_inline_literal_is_reported_where_it_stands() -> None:
    query = '{\n  echoAWSDateTime(value: "2026-02-30T00:00:00Z")\n}'
    _, result = graphql_sync(SCHEMA, {"query": query})

    (error,) = result["errors"]
    assert error["locations"] == [{"line": 2, "column": 26}]
    assert "AWSDateTime must be a valid date and time" in error["message"]


@pytest.mark.parametrize(
    ("scalar", "good", "bad"),
    [
        ("AWSDate", "2026-11-23", "23/11/2026"),
        ("AWSDate", "2026-11-23Z", "2026-11-23+99:99"),
        ("AWSTime", "19:22:14.123", "7pm"),
        ("AWSTime", "19:22Z", "1230"),
        ("AWSTime", "19:22:14+05:30", "T12:30"),
        ("AWSURL", "mailto:ada@example.com", "no scheme"),
        ("AWSTimestamp", 1763925734, "1763925734"),
        ("AWSJSON", '{"a": [1, 2]}', "{a: 1}"),
        ("AWSEmail", "ada@example.com", "ada"),
        ("AWSURL", "https://example.com/x", "example"),
        ("AWSPhone", "+1 555 0100", "call me"),
        ("AWSIPAddress", "10.0.0.1/8", "10.0.0.300"),
    ],
)
def test_aws_scalars_accept_good_and_refuse_bad_values(
    scalar: str, good: object, bad: object
) -> None:
    assert echo(scalar, good) == {"data": {f"echo{scalar}": good}}
    refused = echo(scalar, bad)
    assert "data" not in refused or refused["data"] is None
    assert scalar in refused["errors"][0]["message"]


def test_inline_literals_are_validated_too() -> None:
    _, good = graphql_sync(SCHEMA, {"query": '{ echoAWSDate(value: "2026-11-23") }'})
    _, bad = graphql_sync(SCHEMA, {"query": '{ echoAWSDate(value: "soon") }'})

    assert good == {"data": {"echoAWSDate": "2026-11-23"}}
    assert "AWSDate must be a valid YYYY-MM-DD" in bad["errors"][0]["message"]


@pytest.mark.parametrize("given", ["1970-01-01Z", "2026-11-23+01:00", "2026-11-23-05:30:00"])
def test_dates_may_carry_a_zone_offset_as_in_appsync(given: str) -> None:
    assert echo("AWSDate", given) == {"data": {"echoAWSDate": given}}


@pytest.mark.parametrize("given", ["2026-02-30", "2026-11-23+1", "2026-11-23T00:00"])
def test_impossible_or_malformed_dates_are_refused(given: str) -> None:
    assert "AWSDate must be" in echo("AWSDate", given)["errors"][0]["message"]
