"""JSON documents stored compressed: a profile's derived state, read by Python alone.

A profile's derived state is about 1.4 KB of JSON, most of it the same keys and values in
every profile: deflated against a dictionary of them it takes about a tenth of that. The
first byte of a packed document names its dictionary, so that one may be added later and
documents packed with an older one still read. A dictionary, once released, never changes.
"""

import zlib
from typing import Any

import orjson

# Version 1: the shape of ``purchases.rules.Derived.stored()``, with the values most profiles share.
_DICTIONARY_1 = (
    b'"renew_status":true,"renew_status_changed_at":null,"is_family_shared":false,"offer":null,'
    b'"offer":{"category":"free_trial","type":"free_trial","id":null},"promotional","introductory",'
    b'"win_back","pay_as_you_go","pay_up_front","cancellation_reason":"voluntarily_cancelled",'
    b'"billing_error","product_was_not_available","unknown","upgraded","adapty_server_side_product",'
    b'"stripe","paddle","adapty","play_store","store_base_plan_id":null,"is_refund":false,'
    b'"is_consumable":false,"non_subscriptions":[{"purchase_id":"","store":"app_store",'
    b'"store_product_id":"","store_transaction_id":"","store_original_transaction_id":"",'
    b'"purchased_at":"2026-01-01T00:00:00.000000+0000","environment":"Production"}],'
    b'{"access_levels":[{"access_level_id":"premium","store":"app_store","store_product_id":"",'
    b'"store_base_plan_id":null,"store_transaction_id":"","store_original_transaction_id":"",'
    b'"offer":null,"environment":"Production","starts_at":"2026-01-01T00:00:00.000000+0000",'
    b'"purchased_at":"2026-01-01T00:00:00.000000+0000","originally_purchased_at":'
    b'"2026-01-01T00:00:00.000000+0000","expires_at":"2026-01-01T00:00:00.000000+0000",'
    b'"renewal_cancelled_at":null,"billing_issue_detected_at":null,"is_in_grace_period":false,'
    b'"_grace_until":null,"cancellation_reason":null}],"subscriptions":[{"purchase_id":"",'
    b'"purchase_type":"subscription","store":"app_store","environment":"Production",'
    b'"store_product_id":"","store_base_plan_id":null,"store_transaction_id":"",'
    b'"store_original_transaction_id":"","offer":null,"is_family_shared":false,'
    b'"price":{"country":"US","currency":"USD","value":9.99},"purchased_at":'
    b'"2026-01-01T00:00:00.000000+0000","refunded_at":null,"cancellation_reason":null,'
    b'"variation_id":null,"originally_purchased_at":"2026-01-01T00:00:00.000000+0000",'
    b'"expires_at":"2026-01-01T00:00:00.000000+0000","renew_status":true,'
    b'"renew_status_changed_at":null,"billing_issue_detected_at":null,"is_in_grace_period":false,'
    b'"grace_period_expires_at":null}],"non_subscriptions":[]}'
)
_VERSION = 1
_DICTIONARIES = {_VERSION: _DICTIONARY_1}
_WINDOW = -15  # raw deflate, no zlib header or checksum: the database keeps the bytes whole


def pack(document: Any) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, _WINDOW, zdict=_DICTIONARIES[_VERSION])
    return bytes((_VERSION,)) + compressor.compress(orjson.dumps(document)) + compressor.flush()


def unpack(packed: bytes) -> Any:
    decompressor = zlib.decompressobj(_WINDOW, zdict=_DICTIONARIES[packed[0]])
    return orjson.loads(decompressor.decompress(packed[1:]) + decompressor.flush())
