"""Round trips: decoded values equal the originals and re-encode to the same bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from trionet._variant import bytes_to_var, var_to_bytes

from .variantkit import EVERY_TYPE, same, values

# Every test here runs with the Python and the compiled decoding loop.
pytestmark = pytest.mark.usefixtures("variant_decoder")


def check_round_trip(value: object) -> None:
    encoded = var_to_bytes(value)
    decoded = bytes_to_var(encoded)
    assert same(decoded, value), (decoded, value)
    assert var_to_bytes(decoded) == encoded


@pytest.mark.parametrize("value", EVERY_TYPE, ids=lambda v: type(v).__name__)
def test_every_type_round_trips(value: object) -> None:
    check_round_trip(value)


def test_every_type_in_one_container_round_trips() -> None:
    check_round_trip(EVERY_TYPE)
    check_round_trip({i: value for i, value in enumerate(EVERY_TYPE)})


def test_tuple_and_bytearray_decode_as_list_and_bytes() -> None:
    assert bytes_to_var(var_to_bytes((1, (2,)))) == [1, [2]]
    assert bytes_to_var(var_to_bytes(bytearray(b"ab"))) == b"ab"


@settings(max_examples=400)
@given(values)
def test_generated_values_round_trip(value: object) -> None:
    check_round_trip(value)


@settings(max_examples=200)
@given(values)
def test_encodings_are_padded_to_four_bytes(value: object) -> None:
    assert len(var_to_bytes(value)) % 4 == 0
