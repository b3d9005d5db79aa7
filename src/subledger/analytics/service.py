"""Analytics use cases: metrics over time and cohorts."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from dateutil.relativedelta import relativedelta

from subledger.analytics import repository, rules
from subledger.catalog import service as catalog_service
from subledger.core.errors import bad_request
from subledger.core.runtime import Runtime

MAX_BUCKETS = 1000
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
        end = self.end or today
        back = {"day": timedelta(days=29), "week": timedelta(weeks=11), "month": relativedelta(months=11)}
        start = self.start or end - back[self.period]
        if start > end:
            raise bad_request("value_error", "start", "start must not be later than end.")
        return start, end


def metrics(rt: Runtime, app_id: UUID, query: MetricsQuery) -> dict[str, Any]:
    now = rt.clock.now()
    start, end = query.window(now.date())
    spans = rules.buckets(query.period, start, end)
    if len(spans) > MAX_BUCKETS:
        raise bad_request("value_error", "start", f"At most {MAX_BUCKETS} {query.period}s at a time.")
    with rt.db.read() as conn:
        rows = repository.metric_rows(
            conn, app_id, spans[-1][1], query.environment, query.store, query.country, query.product
        )
        catalog = catalog_service.catalog(conn, app_id)
        rates = catalog_service.rates(conn)
        profiles_at = [repository.profiles_before(conn, app_id, min(span_end, now)) for _, span_end in spans]
    txs = rules.ledger_rows(rows, catalog, rates)
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
        "data": rules.metrics(txs, spans, profiles_at, now),
        "cohorts": rules.cohorts(txs, start, end, now),
    }
