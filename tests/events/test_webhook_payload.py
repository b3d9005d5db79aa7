"""What webhook events carry beyond the basics, as the reference's payload has it: the paywall,
A/B test, placement and audience a purchase was made on; standard prices and discounts; the
reduced commission after a year; the trial price option and the trial's duration."""

from support.api import BASE
from support.events import drain, feed
from support.paywalls import paywall, place
from support.purchases import subscription
from support.receiver import Receiver

TRIAL = {"offer": {"category": "introductory", "type": "free_trial", "id": None}}


def event(api, event_type: str) -> dict:
    [found] = feed(api, event_type=event_type)["data"]
    return found["payload"]


def _studio(api):
    monthly = api.product("monthly", "premium", "P1M", title="Monthly")
    api.products = {"monthly": monthly["product_id"]}
    return api


def _view(api, user: str, placement: str, shown: dict) -> None:
    response = api.client.post(
        f"{BASE}/placements/{placement}/views/",
        headers=api.headers(user),
        json={"paywall_id": shown["paywall_id"], "variation_id": shown["variation_id"]},
    )
    assert response.status_code == 204, response.text


def test_a_purchase_on_a_paywall_names_it_its_placement_and_audience(api):
    studio = _studio(api)
    offer = paywall(studio, "Spring offer")
    studio.admin(
        "POST", "/audiences/", {"audience_id": "france", "rules": [{"field": "ip_country", "op": "eq", "value": "FR"}]}
    )
    place(studio, "onboarding", [{"audience_id": "france", "paywall_id": offer["paywall_id"]}])
    studio.create("u", ip_country="FR")
    shown = studio.client.get(f"{BASE}/placements/onboarding/paywall/", headers=studio.headers("u")).json()
    _view(studio, "u", "onboarding", shown)
    assert studio.set_transaction("u", **subscription(variation_id=shown["variation_id"])).status_code == 200
    props = event(studio, "subscription_started")["event_properties"]
    assert props["variation_id"] == shown["variation_id"]
    assert (props["paywall_name"], props["paywall_revision"], props["developer_id"], props["cohort_name"]) == (
        "Spring offer",
        "1",
        "onboarding",
        "france",
    )
    assert props["ab_test_name"] is None and props["ab_test_revision"] is None
    level = event(studio, "access_level_updated")["event_properties"]
    assert (level["paywall_name"], level["developer_id"], level["cohort_name"]) == (
        "Spring offer",
        "onboarding",
        "france",
    )


def test_a_purchase_in_an_ab_test_names_the_test_and_everyone_as_its_audience(api):
    studio = _studio(api)
    a, b = paywall(studio, "A"), paywall(studio, "B")
    test = studio.admin(
        "POST",
        "/ab-tests/",
        {
            "name": "Price test",
            "variations": [
                {"paywall_id": a["paywall_id"], "weight": 50},
                {"paywall_id": b["paywall_id"], "weight": 50},
            ],
        },
    ).json()["data"]
    place(studio, "settings", [{"ab_test_id": test["ab_test_id"]}])
    studio.create("u")
    shown = studio.client.get(f"{BASE}/placements/settings/paywall/", headers=studio.headers("u")).json()
    _view(studio, "u", "settings", shown)
    studio.set_transaction("u", **subscription(variation_id=shown["variation_id"]))
    props = event(studio, "subscription_started")["event_properties"]
    assert (props["ab_test_name"], props["ab_test_revision"]) == ("Price test", 1)
    assert props["paywall_name"] == shown["paywall_name"] and props["developer_id"] == "settings"
    assert props["cohort_name"] == "All Users"


def test_a_variation_nobody_saw_at_a_placement_names_the_paywall_alone(api):
    studio = _studio(api)
    offer = paywall(studio, "Direct")
    studio.create("u")
    studio.set_transaction("u", **subscription(variation_id=offer["variation_id"]))
    props = event(studio, "subscription_started")["event_properties"]
    assert props["paywall_name"] == "Direct" and props["developer_id"] is None and props["cohort_name"] is None


def test_a_free_trial_charges_nothing_and_its_discount_is_the_standard_price(api, runtime, clock):
    api.product("monthly", "premium", "P1M")
    api.create("u")
    trial = subscription(
        **TRIAL,
        price={"country": "US", "currency": "USD", "value": 9.99},
        expires_at="2025-01-08T10:00:00.000000+0000",
    )
    assert api.set_transaction("u", **trial).status_code == 200
    props = event(api, "trial_started")["event_properties"]
    assert (props["price_local"], props["price_usd"]) == (None, None)
    assert (props["original_price_local"], props["discount_amount_local"]) == (9.99, 9.99)
    assert props["trial_duration"] == "7 days" and props["store_offer_number_of_periods"] is None
    with Receiver() as plain, Receiver() as priced:
        for receiver, send in ((plain, False), (priced, True)):
            body = {"url": receiver.url, "event_types": ["trial_started"], "send_trial_price": send}
            assert api.admin("POST", "/webhooks/", body).status_code == 201
        api.create("v")
        assert (
            api.set_transaction(
                "v", **{**trial, "store_transaction_id": "t-2", "store_original_transaction_id": "o-2"}
            ).status_code
            == 200
        )
        drain(runtime, clock)
    [without] = plain.events()
    [with_price] = priced.events()
    assert without["event_properties"]["price_local"] is None
    assert (with_price["event_properties"]["price_local"], with_price["event_properties"]["price_usd"]) == (9.99, 9.99)


def test_a_one_day_trial_lasts_1_days_as_the_reference_writes_it(api):
    api.product("monthly", "premium", "P1M")
    api.create("u")
    trial = subscription(
        **TRIAL, price={"country": "US", "currency": "USD", "value": 0}, expires_at="2025-01-02T10:00:00.000000+0000"
    )
    assert api.set_transaction("u", **trial).status_code == 200
    props = event(api, "trial_started")["event_properties"]
    assert props["trial_duration"] == "1 days"
    assert props["original_price_local"] is None and props["discount_amount_local"] is None  # no standard price sent


def test_an_introductory_price_has_no_known_standard_price(api):
    api.product("monthly", "premium", "P1M")
    api.create("u")
    intro = subscription(offer={"category": "introductory", "type": "pay_as_you_go", "id": None})
    assert api.set_transaction("u", **intro).status_code == 200
    props = event(api, "subscription_started")["event_properties"]
    assert props["price_local"] == 9.99
    assert props["original_price_local"] is None and props["discount_amount_local"] is None


def test_renewals_after_a_year_earn_the_reduced_rate(api):
    api.product("yearly", "premium", "P1Y")
    api.create("u")
    first = subscription(store_product_id="yearly", expires_at="2026-01-01T10:00:00.000000+0000")
    renewal = subscription(
        store_product_id="yearly",
        store_transaction_id="tx-2",
        purchased_at="2026-01-01T10:00:00.000000+0000",
        expires_at="2027-01-01T10:00:00.000000+0000",
    )
    assert api.set_transaction("u", **first).status_code == 200
    assert api.set_transaction("u", **renewal).status_code == 200
    assert event(api, "subscription_started")["event_properties"]["rate_after_first_year"] is False
    renewed = event(api, "subscription_renewed")["event_properties"]
    assert renewed["rate_after_first_year"] is True
    assert renewed["proceeds_local"] == round(9.99 * 0.85, 2)
