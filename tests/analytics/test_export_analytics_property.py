"""Random histories (trials, renewals, refunds, two stores, users installed at any hour) sent
through the API, and six charts of the Export Analytics API compared with a plain computation
from the same history, in time zones with whole, half and three-quarter hour offsets, by day,
week and month, on both engines."""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.api import new_app

NOW = datetime(2025, 4, 10, 12, 0, tzinfo=UTC)
FIRST, LAST = date(2025, 1, 1), date(2025, 3, 31)
ZONES = ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu", "Pacific/Honolulu"]
CHARTS = ["revenue", "refund_events", "subscriptions_new", "trials_new", "subscriptions_active", "installs"]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000+0000")


subscriptions = st.fixed_dictionaries(
    {
        "store": st.sampled_from(["app_store", "play_store"]),
        "start_minutes": st.integers(0, 100 * 24 * 60),  # after Dec 25, 2024
        "trial": st.booleans(),
        "payments": st.integers(0, 4),
        "price": st.sampled_from([5, 9.99, 30]),
        "refund": st.one_of(st.none(), st.integers(0, 3)),  # which payment, some days after it
    }
)
histories = st.lists(
    st.tuples(st.integers(0, 110 * 24 * 60), st.lists(subscriptions, max_size=2)), min_size=1, max_size=4
)


def transactions(number: int, plan: dict) -> list[dict]:
    """A subscription's transactions: an optional 7-day trial, then monthly payments (30 days),
    up to a few days before now."""
    moment = datetime(2024, 12, 25, tzinfo=UTC) + timedelta(minutes=plan["start_minutes"])
    chain, found = f"s{number}", []
    steps = [("trial", 7)] * plan["trial"] + [("paid", 30)] * plan["payments"]
    for index, (kind, days) in enumerate(steps):
        if moment > NOW - timedelta(days=4):  # nothing is bought (or refunded) in the future
            break
        body = {
            "purchase_type": "subscription",
            "store": plan["store"],
            "store_product_id": "monthly",
            "store_transaction_id": f"{chain}-{index}",
            "store_original_transaction_id": chain,
            "price": {"country": "US", "currency": "USD", "value": plan["price"]},
            "purchased_at": iso(moment),
            "originally_purchased_at": iso(moment),
            "expires_at": iso(moment + timedelta(days=days)),
            "renew_status": True,
        }
        if kind == "trial":
            body["offer"] = {"category": "introductory", "type": "free_trial"}
        elif plan["refund"] == index - plan["trial"]:
            body |= {"refunded_at": iso(moment + timedelta(days=3)), "cancellation_reason": "refund"}
        found.append(body)
        moment += timedelta(days=days)
    return found


def label(moment: datetime, unit: str, zone: ZoneInfo) -> date | None:
    """The period a moment falls in, by its first day in the window (None outside it)."""
    day = moment.astimezone(zone).date()
    if not FIRST <= day <= LAST:
        return None
    start = {"day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1)}[unit]
    return max(start, FIRST)


def expected(installs: list[datetime], sales: list[dict], chart: str, unit: str, zone: ZoneInfo) -> dict:
    """A chart's value by period, computed plainly from what was sent."""
    by_period: dict[date, float] = defaultdict(float)

    def add(moment, amount):
        if (found := label(moment, unit, zone)) is not None:
            by_period[found] += amount

    when = lambda text: datetime.fromisoformat(text)  # noqa: E731
    paid = [sale for sale in sales if "offer" not in sale]
    if chart == "installs":
        for moment in installs:
            add(moment, 1)
    elif chart == "revenue":
        for sale in paid:
            add(when(sale["purchased_at"]), sale["price"]["value"])
            if "refunded_at" in sale:
                add(when(sale["refunded_at"]), -sale["price"]["value"])
    elif chart == "refund_events":
        for sale in paid:
            if "refunded_at" in sale:
                add(when(sale["refunded_at"]), 1)
    elif chart == "subscriptions_new":
        firsts = {}
        for sale in sorted(paid, key=lambda sale: sale["purchased_at"]):
            firsts.setdefault(sale["store_original_transaction_id"], sale)
        for sale in firsts.values():
            add(when(sale["purchased_at"]), 1)
    elif chart == "trials_new":
        for sale in sales:
            if "offer" in sale:
                add(when(sale["purchased_at"]), 1)
    return by_period


def active_at_ends(sales: list[dict], periods: list[date], unit: str, zone: ZoneInfo) -> dict:
    """Subscriptions a paid, unrefunded sale covers at each period's end (or now)."""
    found = {}
    for index, start in enumerate(periods):
        next_day = periods[index + 1] if index + 1 < len(periods) else LAST + timedelta(days=1)
        end = min(datetime.combine(next_day, datetime.min.time(), tzinfo=zone).astimezone(UTC), NOW)
        chains = set()
        for sale in sales:
            if "offer" in sale:
                continue
            ends = min(datetime.fromisoformat(sale[name]) for name in ("expires_at", "refunded_at") if name in sale)
            if datetime.fromisoformat(sale["purchased_at"]) <= end < ends:
                chains.add(sale["store_original_transaction_id"])
        found[start] = len(chains)
    return found


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories, zone=st.sampled_from(ZONES), unit=st.sampled_from(["day", "week", "month"]))
def test_charts_match_a_plain_computation(runtime, client, clock, history, zone, unit):
    clock.current = datetime(2024, 12, 20, tzinfo=UTC)
    api = new_app(runtime, client)
    api.product("monthly", "premium", "P1M")
    api.product("monthly", "premium", "P1M", store="play_store")
    installs, sales = [], []
    for user, (installed_minutes, plans) in enumerate(history):
        clock.current = datetime(2024, 12, 20, tzinfo=UTC) + timedelta(minutes=installed_minutes)
        installs.append(clock.current)
        assert api.create(f"u{user}").status_code == 200
        for number, plan in enumerate(plans):
            for body in transactions(user * 10 + number, plan):
                sales.append(body)
    clock.current = NOW
    for sale in sales:
        user = "u" + str(int(sale["store_original_transaction_id"][1:]) // 10)
        assert api.set_transaction(user, **sale).status_code == 200
    tz = ZoneInfo(zone)
    for chart in CHARTS:
        clock.current += timedelta(seconds=1)
        body = {"chart_id": chart, "filters": {"date": [FIRST.isoformat(), LAST.isoformat()]}, "period_unit": unit}
        response = client.post(
            "/api/v1/client-api/metrics/analytics/", json=body, headers={**api.headers(), "Adapty-Tz": zone}
        )
        assert response.status_code == 200, response.text
        metric = response.json()["data"]["revenue" if chart == "revenue" else chart]
        got = {date.fromisoformat(point["date"]): point["value"] for point in metric["data"][0]["values"]}
        if chart == "subscriptions_active":
            want = active_at_ends(sales, sorted(got), unit, tz)
        else:
            plain = expected(installs, sales, chart, unit, tz)
            want = {start: round(plain.get(start, 0), 2) for start in got}
        assert got == want, (chart, zone, unit)
