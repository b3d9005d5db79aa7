"""Derived state stored compressed: read back exactly, small, and readable for ever."""

import hashlib

import orjson
import pytest

from subledger.core import packing
from subledger.core.packing import pack, unpack

FIRST_DICTIONARY_SHA256 = "b052d671d85a1a96e16ea7dde874373f56294d1387892da9d61a353fdb0bdaa6"

SUBSCRIPTION = {
    "purchase_id": "cb9e25dd-5841-5d38-be54-6c5218d4022b",
    "purchase_type": "subscription",
    "store": "play_store",
    "environment": "Sandbox",
    "store_product_id": "yearly.pro",
    "store_base_plan_id": "base",
    "store_transaction_id": "GPA.3372-5541-9086-71920..1",
    "store_original_transaction_id": "GPA.3372-5541-9086-71920",
    "offer": {"category": "introductory", "type": "pay_up_front", "id": "intro-€"},
    "is_family_shared": False,
    "price": {"country": "JP", "currency": "JPY", "value": 1200.0},
    "purchased_at": "2026-05-08T09:04:27.415803+0000",
    "refunded_at": None,
    "cancellation_reason": None,
    "variation_id": None,
    "originally_purchased_at": "2025-08-08T09:04:27.415803+0000",
    "expires_at": "2027-05-08T09:04:27.415803+0000",
    "renew_status": True,
    "renew_status_changed_at": None,
    "billing_issue_detected_at": None,
    "is_in_grace_period": False,
    "grace_period_expires_at": None,
}


@pytest.mark.parametrize(
    "document",
    [
        {"access_levels": [], "subscriptions": [SUBSCRIPTION], "non_subscriptions": []},
        {"nested": {"list": [1, 2.5, -0.0, None, True, "ümlaut ✓"]}, "big": 2**62},
        [],
    ],
)
def test_a_document_reads_back_as_it_was_written(document):
    assert unpack(pack(document)) == document
    assert orjson.dumps(unpack(pack(document))) == orjson.dumps(document)  # the key order too


def test_a_profile_state_packs_to_a_fraction_of_its_json():
    state = {"access_levels": [], "subscriptions": [SUBSCRIPTION] * 2, "non_subscriptions": []}
    assert len(pack(state)) < len(orjson.dumps(state)) / 4


def test_what_was_packed_with_the_first_dictionary_still_reads():
    """Stored values outlive releases: a dictionary never changes once released."""
    stored = bytes.fromhex("01a346514752c060cb33385d0700")
    assert unpack(stored) == {
        "access_levels": [
            {"access_level_id": "premium", "store": "app_store", "expires_at": "2026-01-01T00:00:00.000000+0000"}
        ],
        "subscriptions": [],
        "non_subscriptions": [],
    }


def test_the_first_dictionary_is_the_one_released():
    """A change anywhere in it would misread values packed with it (the one above uses part of it)."""
    assert hashlib.sha256(packing._DICTIONARIES[1]).hexdigest() == FIRST_DICTIONARY_SHA256
