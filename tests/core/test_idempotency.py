"""Idempotency-Key on the API's writes: a repeat gets the first answer and changes nothing, a key
reused for another request is refused, a write that did nothing gives its key up, and keys last a day."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from support.currencies import error, transact
from support.database import db_snapshot
from support.purchases import subscription

from subledger.core import idempotency
from subledger.core.errors import ApiError
from subledger.core.tables import idempotency_keys
from subledger.worker import DeliveryWorker


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def test_a_repeated_write_answers_the_first_answer_and_changes_nothing(api, runtime):
    api.product("monthly", "premium")
    sent = key()
    first = api.request("POST", "/profile/", "u", json={"email": "a@b.co"}, headers=sent)
    assert first.status_code == 200
    again = api.request("POST", "/profile/", "u", json={"email": "a@b.co"}, headers=sent)
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["idempotent-replayed"] == "true" and again.headers["content-type"] == "application/json"

    sent = key()
    bought = api.request("POST", "/purchase/set/transaction/", "u", json=subscription(), headers=sent)
    assert bought.status_code == 200
    before = db_snapshot(runtime)
    repeated = api.request("POST", "/purchase/set/transaction/", "u", json=subscription(), headers=sent)
    assert repeated.content == bought.content
    assert db_snapshot(runtime) == before


def test_a_key_used_for_another_request_is_refused(api, runtime):
    sent = key()
    assert api.request("POST", "/profile/", "u", json={"email": "a@b.co"}, headers=sent).status_code == 200
    before = db_snapshot(runtime)
    other = api.request("PATCH", "/profile/", "u", json={"email": "c@d.co"}, headers=sent)
    error(other, 400, "idempotency_key_invalid")
    assert db_snapshot(runtime) == before
    too_long = api.request("PATCH", "/profile/", "u", json={}, headers={"Idempotency-Key": "k" * 256})
    error(too_long, 400, "idempotency_key_invalid")


def test_a_key_is_scoped_to_the_profile_the_request_names(wallet):  # noqa: F811
    assert wallet.create("v").status_code == 200
    sent = key()
    body = {"items": [{"currency_code": "COINS", "amount": 5}]}
    first = transact(wallet, body, "u", **sent)
    second = transact(wallet, body, "v", **sent)
    assert first.status_code == second.status_code == 200
    assert first.json()["transaction_id"] != second.json()["transaction_id"]


def test_a_write_that_did_nothing_gives_its_key_up(wallet, runtime):  # noqa: F811
    sent = key()
    error(transact(wallet, {"items": [{"currency_code": "COINS", "amount": -1}]}, **sent), 400, "insufficient_balance")
    with runtime.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(idempotency_keys)).scalar() == 0
    credited = transact(wallet, {"items": [{"currency_code": "COINS", "amount": 3}]}, **sent)
    assert credited.status_code == 200
    assert transact(wallet, {"items": [{"currency_code": "COINS", "amount": 3}]}, **sent).content == credited.content
    history = wallet.request("GET", "/vc/transactions/", "u").json()["data"]
    assert len(history) == 1


def test_keys_last_a_day_and_are_pruned(wallet, runtime, clock):  # noqa: F811
    sent = key()
    body = {"items": [{"currency_code": "COINS", "amount": 2}]}
    first = transact(wallet, body, **sent).json()["transaction_id"]
    clock.current += timedelta(hours=23)
    assert transact(wallet, body, **sent).json()["transaction_id"] == first
    clock.current += timedelta(hours=2)
    assert transact(wallet, body, **sent).json()["transaction_id"] != first  # a new day: done again
    clock.current += idempotency.KEEP + timedelta(seconds=1)
    assert idempotency.prune(runtime.db, clock.now()) == 1
    with runtime.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(idempotency_keys)).scalar() == 0


FOUR_COINS = b'{"items": [{"currency_code": "COINS", "amount": 4}]}'


def four_coins(api, sent: dict[str, str]):
    return api.request("POST", "/vc/transactions/", "u", headers=sent, content=FOUR_COINS)


def _left_by_a_stopped_process(api, runtime, state: str) -> dict[str, str]:
    """A key claimed by a request whose server process stopped ``LEASE`` ago, in ``state``."""
    sent = key()
    path = b"/api/v2/server-side-api/vc/transactions/"
    digest = idempotency._digest  # the middleware's own digests: the row is what it would have written
    with runtime.db.write() as conn:
        conn.execute(
            idempotency_keys.insert().values(
                app_id=uuid.UUID(api.app_id),
                key_digest=digest(sent["Idempotency-Key"].encode(), b"u", b""),
                request_digest=digest(b"POST", path, b"", FOUR_COINS),
                owner=uuid.uuid4(),
                state=state,
                created_at=runtime.clock.now() - idempotency.LEASE - timedelta(seconds=1),
            )
        )
    return sent


def test_a_claim_lost_before_its_work_is_taken_over_and_one_lost_after_it_is_not_done_again(wallet, runtime):  # noqa: F811
    abandoned = _left_by_a_stopped_process(wallet, runtime, "running")
    assert four_coins(wallet, abandoned).status_code == 200
    lost = _left_by_a_stopped_process(wallet, runtime, "applied")
    error(four_coins(wallet, lost), 409, "idempotency_answer_lost")
    assert wallet.request("GET", "/vc/balances/", "u").json()["data"][0]["balance"] == 4


def test_a_repeat_while_the_first_is_at_work_is_told_to_wait(wallet, runtime):  # noqa: F811
    sent = _left_by_a_stopped_process(wallet, runtime, "running")
    with runtime.db.write() as conn:  # claimed just now: its request is still at work
        conn.execute(idempotency_keys.update().values(created_at=runtime.clock.now()))
    waiting = four_coins(wallet, sent)
    error(waiting, 409, "idempotency_in_flight")
    assert waiting.headers["Retry-After"] == "1"


def test_the_legacy_api_and_the_web_api_keep_their_answers_too(api, runtime):
    sent = key()
    v1 = {"customer_user_id": "legacy", "email": "l@b.co"}
    first = api.client.post("/api/v1/sdk/profiles/", json=v1, headers={**api.headers(), **sent})
    assert first.status_code in (200, 201), first.text
    again = api.client.post("/api/v1/sdk/profiles/", json=v1, headers={**api.headers(), **sent})
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"

    assert api.create("user123").status_code == 200
    attribution = {"status": "organic", "channel": "ads", "customer_user_id": "user123"}
    public = {"Authorization": f"Api-Key {api.public}", **key()}
    added = api.client.post("/api/v2/web-api/attribution/", json=attribution, headers=public)
    assert added.status_code == 201, added.text
    before = db_snapshot(runtime)
    repeated = api.client.post("/api/v2/web-api/attribution/", json=attribution, headers=public)
    assert (repeated.status_code, repeated.headers["idempotent-replayed"]) == (201, "true")
    assert db_snapshot(runtime) == before


def test_the_worker_deletes_keys_past_their_day(wallet, runtime, clock):  # noqa: F811
    transact(wallet, {"items": [{"currency_code": "COINS", "amount": 1}]}, **key())
    clock.current += idempotency.KEEP + timedelta(seconds=1)
    transact(wallet, {"items": [{"currency_code": "COINS", "amount": 1}]}, **key())  # a day younger
    worker = DeliveryWorker(runtime)
    try:
        worker.run_once()
    finally:
        worker.close()
    with runtime.db.read() as conn:
        kept = conn.execute(sa.select(idempotency_keys.c.created_at)).scalars().all()
    assert kept == [clock.now()]


def test_a_request_whose_claim_was_taken_over_does_not_do_its_work(wallet, runtime, clock):  # noqa: F811
    """A first request so slow that a repeat took its claim over, writing at last: refused, undone."""
    sent = key()
    digest = idempotency._digest(sent["Idempotency-Key"].encode(), b"u", b"")
    with runtime.db.write() as conn:  # the first request's claim...
        conn.execute(
            idempotency_keys.insert().values(
                app_id=uuid.UUID(wallet.app_id),
                key_digest=digest,
                request_digest="0" * 64,
                owner=uuid.uuid4(),
                state="running",
                created_at=clock.now(),
            )
        )
    first = uuid.uuid4()  # ...was taken over: its owner is now another
    with pytest.raises(ApiError) as refused, runtime.db.write() as conn:
        conn.execute(sa.text("SELECT 1"))  # the first request's work would be here
        idempotency.mark_applied(uuid.UUID(wallet.app_id), digest, first, conn)
    assert refused.value.code == "idempotency_in_flight"
