"""Analytics use cases: metrics over time and cohorts, export and import."""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from typing import Any
from uuid import UUID

import orjson
from dateutil.relativedelta import relativedelta
from pydantic import ValidationError

from subledger.analytics import transfer
from subledger.catalog import service as catalog_service
from subledger.core.dates import EARLIEST_DAY, LATEST_DAY
from subledger.core.errors import NON_FIELD, ApiError, bad_request, from_validation_errors
from subledger.core.runtime import Runtime
from subledger.events import service as events_service
from subledger.metrics import repository, rules
from subledger.profiles import service as profiles_service
from subledger.purchases import service as purchases_service
from subledger.purchases.schemas import TransactionIn

MAX_BUCKETS = 1000
# How long a client is asked to wait before it asks again for metrics that wait for a
# rebuild or a repricing: on a big ledger either takes minutes.
RETRY_METRICS_AFTER_SECONDS = 30
METRICS = (
    "gross_usd",
    "refunds_usd",
    "net_usd",
    "mrr_usd",
    "arr_usd",
    "active_subscriptions",
    "active_trials",
    "new_subscriptions",
    "new_trials",
    "trial_conversions",
    "trial_to_paid",
    "churned_subscriptions",
    "churn_rate",
    "refund_rate",
    "arpu_usd",
    "arppu_usd",
)


@dataclass(frozen=True)
class MetricsQuery:
    period: rules.Period = "day"
    start: date | None = None  # default: 30 days, 12 weeks or 12 months before ``end``
    end: date | None = None  # default: today
    environment: str | None = "Production"  # None: both
    store: str | None = None
    country: str | None = None
    product: str | None = None

    def window(self, today: date) -> tuple[date, date]:
        # The dates asked for are checked before any arithmetic on them: near date.min it overflows.
        for name, day in (("start", self.start), ("end", self.end)):
            if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
                raise bad_request("value_error", name, f"Dates run from {EARLIEST_DAY} to {LATEST_DAY}.")
        end = self.end or today
        back: dict[str, timedelta | relativedelta] = {
            "day": timedelta(days=29),
            "week": timedelta(weeks=11),
            "month": relativedelta(months=11),
        }
        start = self.start or max(EARLIEST_DAY, end - back[self.period])
        if start > end:
            raise bad_request("value_error", "start", "start must not be later than end.")
        return start, end

    def filters(self) -> dict[str, str | None]:
        """The rollup key's filters (None: any value)."""
        return {"store": self.store, "product": self.product, "country": self.country, "environment": self.environment}


def _rebuilding(why: str) -> ApiError:
    return ApiError.one(503, "metrics_rebuilding", NON_FIELD, why).retry_after(RETRY_METRICS_AFTER_SECONDS)


def metrics(rt: Runtime, app_id: UUID, query: MetricsQuery) -> dict[str, Any]:
    now = rt.clock.now()
    start, end = query.window(now.date())
    spans = rules.buckets(query.period, start, end)
    if len(spans) > MAX_BUCKETS:
        raise bad_request("value_error", "start", f"At most {MAX_BUCKETS} {query.period}s at a time.")
    first_day, last_day = spans[0][0].date(), spans[-1][1].date()
    filters = query.filters()
    with rt.db.lagging_read() as conn:
        if app_id in repository.pending_rebuilds(conn):
            raise _rebuilding("This app's metrics wait for a rebuild from its ledger, which `subledger migrate` runs.")
        if catalog_service.repricing(conn):
            raise _rebuilding(
                "New exchange rates are being applied to the ledger; the metrics add up again once they are."
            )
        before, days = repository.day_sums(conn, app_id, first_day, last_day, filters)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        now_in_window = first_day <= now.date() < last_day
        sums = rules.Sums(
            first_day=first_day,
            before=before,
            days=days,
            payers=repository.payers(conn, app_id, query.period, first_day, last_day, filters),
            today=repository.coverage_moves(conn, app_id, midnight, now, filters) if now_in_window else None,
        )
        cohort_sums = repository.cohort_sums(conn, app_id, start.replace(day=1), end, filters)
        # Profiles at each bucket's end (or now): those before the window, plus those created in each bucket.
        ends = [min(span_end, now) for _, span_end in spans]
        profiles_at = list(
            accumulate(
                repository.profiles_created(conn, app_id, [spans[0][0], *ends]),
                initial=repository.profiles_before(conn, app_id, spans[0][0]),
            )
        )[1:]
    return {
        "period": query.period,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "filters": {
            "environment": query.environment,
            "store": query.store,
            "country": query.country,
            "product": query.product,
        },
        "data": rules.metrics(sums, spans, profiles_at, now),
        "cohorts": rules.cohorts(cohort_sums, now),
    }


# Export and import --------------------------------------------------------------

EXPORTS = ("profiles", "transactions", "events")
PAGE = 1000


def export_size(rt: Runtime, app_id: UUID, what: str) -> int:
    with rt.db.lagging_read() as conn:
        return repository.count(conn, what, app_id)


def export_rows(rt: Runtime, app_id: UUID, what: str, flat: bool) -> Iterator[dict[str, Any]]:
    """Every profile, transaction or event of the app, page by page (each page its own
    read, so a long export holds no lock); ``flat`` gives CSV columns."""
    if what == "events":
        cursor = None
        while True:
            page = events_service.feed(rt, app_id, cursor, PAGE, None, None, None, None)
            for event in page["data"]:
                yield {**event, "payload": orjson.dumps(event["payload"]).decode()} if flat else event
            if page["next_cursor"] is None:
                return
            cursor = int(page["next_cursor"])
    after: UUID | None = None
    while True:
        with rt.db.lagging_read() as conn:
            if what == "profiles":
                rows = repository.profiles_page(conn, app_id, after, PAGE)
                following = rows[-1]["id"] if len(rows) == PAGE else None
            else:
                rows, following = repository.transactions_page(conn, app_id, after, PAGE)
        now = rt.clock.now()
        for row in rows:
            if what == "transactions":
                body = transfer.transaction_body(row)
                yield transfer.flatten(body) if flat else body
            elif flat:
                yield transfer.profile_columns(row, profiles_service.active_access_level_ids(row, now))
            else:
                yield profiles_service.respond(row, now, row["last_timestamp_ms"])["data"]
        if following is None:
            return
        after = following


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0  # recorded: new, changed or as they were
    changed: int = 0  # new, or different from what was recorded
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


def import_transactions(
    rt: Runtime, app_id: UUID, lines: Iterable[tuple[int, dict[str, Any] | str]], chunk: int = 500
) -> ImportReport:
    """Record historical transactions, each line as set-transaction would (so importing
    again changes nothing), creating profiles for unknown customer_user_ids.

    ``lines`` are (line number, import body), or (line number, why it could not be
    read). A bad line is reported and none of it is recorded; the others are.
    """
    report = ImportReport()
    batch: list[tuple[int, str, TransactionIn]] = []
    for number, line in lines:
        report.read += 1
        try:
            if isinstance(line, str):
                raise transfer.BadRow(line)
            customer_user_id, body = transfer.split(line)
            tx = TransactionIn.model_validate(body)
            purchases_service.check(tx)
        except ValidationError as invalid:
            report.bad.append((number, from_validation_errors(invalid.errors()).summary()))
            continue
        except ApiError as refused:
            report.bad.append((number, refused.summary()))
            continue
        except transfer.BadRow as bad:
            report.bad.append((number, str(bad)))
            continue
        batch.append((number, customer_user_id, tx))
        if len(batch) >= chunk:
            _record(rt, app_id, batch, report)
            batch = []
    _record(rt, app_id, batch, report)
    report.bad.sort()
    return report


def _record(rt: Runtime, app_id: UUID, batch: list[tuple[int, str, TransactionIn]], report: ImportReport) -> None:
    """One database transaction per user of the batch; when a user's lines fail together,
    each is tried alone so that only the bad ones are left out."""
    by_user: dict[str, list[tuple[int, TransactionIn]]] = defaultdict(list)
    for number, customer_user_id, tx in batch:
        by_user[customer_user_id].append((number, tx))
    for customer_user_id, items in by_user.items():
        try:
            report.changed += purchases_service.import_transactions(
                rt, app_id, customer_user_id, [tx for _, tx in items]
            )
            report.imported += len(items)
        except ApiError as refused:
            if len(items) == 1:
                report.bad.append((items[0][0], refused.summary()))
                continue
            for number, tx in items:  # one of them is bad: find which
                try:
                    report.changed += purchases_service.import_transactions(rt, app_id, customer_user_id, [tx])
                    report.imported += 1
                except ApiError as alone:
                    report.bad.append((number, alone.summary()))
