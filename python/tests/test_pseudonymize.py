"""Pseudonyms: the method's HMAC construction, checked against Python's standard library."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pyarrow as pa
import pytest

import crowdtally as ct

KEY = b"pseudonym-test-key-16+"


def reference(subscriber: bytes, label: str, key: bytes = KEY) -> int:
    message = b"crowdtally/v1\x00" + label.encode() + b"\x00" + subscriber
    return int.from_bytes(hmac.new(key, message, hashlib.sha256).digest()[:8], "big")


def test_string_ids_match_the_standard_library() -> None:
    ids = ["206010123456789", "", "ünïcode-id", "42"]
    got = ct.pseudonymize(ids, key=KEY, period_label="2026Q3")
    assert got.dtype == np.uint64
    assert got.tolist() == [reference(i.encode(), "2026Q3") for i in ids]


def test_integer_ids_use_eight_big_endian_bytes() -> None:
    ids = [0, 42, 2**63 - 1]
    got = ct.pseudonymize(ids, key=KEY, period_label="2026Q3")
    assert got.tolist() == [reference(i.to_bytes(8, "big"), "2026Q3") for i in ids]
    # "42" and 42 are different subscribers.
    assert ct.pseudonymize(["42"], key=KEY, period_label="2026Q3")[0] != got[1]


def test_binary_ids_are_used_as_they_are() -> None:
    ids = [b"\x00\x01\x02", b"\xff" * 32]
    got = ct.pseudonymize(ids, key=KEY, period_label="2026Q4")
    assert got.tolist() == [reference(i, "2026Q4") for i in ids]


def test_numpy_and_arrow_inputs() -> None:
    as_numpy = ct.pseudonymize(np.array([1, 2, 3], dtype=np.int64), key=KEY, period_label="L")
    as_uint = ct.pseudonymize(np.array([1, 2, 3], dtype=np.uint64), key=KEY, period_label="L")
    as_arrow = ct.pseudonymize(pa.array(["a", "b"]), key=KEY, period_label="L")
    as_str_numpy = ct.pseudonymize(np.array(["a", "b"]), key=KEY, period_label="L")
    assert as_numpy.tolist() == as_uint.tolist()
    assert as_numpy.tolist() == [reference(i.to_bytes(8, "big"), "L") for i in (1, 2, 3)]
    assert (
        as_arrow.tolist() == as_str_numpy.tolist() == [reference(b"a", "L"), reference(b"b", "L")]
    )


def test_label_rotates_and_key_matters() -> None:
    a = ct.pseudonymize(["x"], key=KEY, period_label="2026Q3")[0]
    b = ct.pseudonymize(["x"], key=KEY, period_label="2026Q4")[0]
    c = ct.pseudonymize(["x"], key=KEY + b"!", period_label="2026Q3")[0]
    assert len({int(a), int(b), int(c)}) == 3


def test_bad_inputs_name_the_field_and_leak_nothing() -> None:
    with pytest.raises(ct.ConfigError, match="key") as short:
        ct.pseudonymize(["x"], key=b"short-secret", period_label="L")
    assert "short-secret" not in str(short.value)
    assert short.value.field == "key"
    with pytest.raises(ct.ConfigError, match="period_label"):
        ct.pseudonymize(["x"], key=KEY, period_label="")
    with pytest.raises(ct.InputError, match="row 1") as null:
        ct.pseudonymize(["secret-imsi-1", None], key=KEY, period_label="L")
    assert "secret-imsi-1" not in str(null.value)
    with pytest.raises(ct.InputError, match="row 0") as negative:
        ct.pseudonymize([-7, 1], key=KEY, period_label="L")
    assert negative.value.field == "ids"
    with pytest.raises(ct.InputError, match="mixed"):
        ct.pseudonymize(["a", 1], key=KEY, period_label="L")
