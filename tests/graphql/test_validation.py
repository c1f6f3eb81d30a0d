"""A bad value written in the query names the argument and the field it is in."""

from __future__ import annotations

import pytest

from tests.conftest import LoadedApp


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            'mutation { createUser(input: {name: null, email: "a@b.c"}) { id } }',
            "input.name: Expected value of non-null type 'String!' not to be null.",
        ),
        (
            'mutation { createUser(input: {name: 5, email: "a@b.c"}) { id } }',
            "input.name: String cannot represent a non string value: 5",
        ),
        (
            'mutation { createProduct(input: {name: "p", brandId: "b", price: 1, '
            'tags: ["a", null]}) { id } }',
            "input.tags[1]: Expected value of non-null type 'String!' not to be null.",
        ),
        (
            "query { readUser(id: null) { id } }",
            "id: Expected value of non-null type 'ID!' not to be null.",
        ),
        (
            'mutation { addFavorite(userId: "u", productId: 7.5) }',
            "productId: ID cannot represent a non-string and non-integer value: 7.5",
        ),
    ],
)
def test_a_bad_literal_value_is_reported_where_it_is(
    shop: LoadedApp, operation: str, message: str
) -> None:
    result = shop.graphql(operation)

    [error] = result["errors"]
    assert error["message"] == message
    assert error["locations"]
    assert result.get("data") is None


def test_a_bad_value_is_reported_the_same_way_when_the_query_comes_again(
    shop: LoadedApp,
) -> None:
    operation = 'mutation { createUser(input: {name: null, email: "a@b.c"}) { id } }'

    first, again = shop.error_messages(operation), shop.error_messages(operation)

    assert (
        first == again == ["input.name: Expected value of non-null type 'String!' not to be null."]
    )
