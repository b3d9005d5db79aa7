"""Amounts by segment and period, and how they are written in an answer."""

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from subledger.client_api.facts import Money, Sale, User
from subledger.client_api.periods import Periods

TOTAL = "Total"
UNKNOWN = "unknown"  # the segment of what has no value for it (no attribution, no offer)
CENT = Decimal("0.01")


def segment_of(item: Sale | User, segment: str | None) -> str:
    if segment is None:
        return TOTAL
    value = item.values.get(segment)
    return UNKNOWN if value is None else value


def money(amount: Money | int | Decimal, account: str | None) -> float | int:
    """An amount as an answer writes it: money (in ``account``) to the cent, counts as they are."""
    if isinstance(amount, int):
        return amount
    value: Decimal = getattr(amount, account or "revenue") if isinstance(amount, Money) else amount
    return float(value.quantize(CENT, rounding=ROUND_HALF_EVEN))


def percent(part: int | Decimal, whole: int | Decimal) -> float:
    """``part`` as a percentage of ``whole`` (0 of nothing), to two places."""
    if not whole:
        return 0.0
    return float((Decimal(part) * 100 / Decimal(whole)).quantize(CENT, rounding=ROUND_HALF_EVEN))


class Series:
    """Amounts (Money, or counts) by segment and period; the total beside the segments."""

    def __init__(self, span: Periods, money: bool):
        self.span = span
        self.money = money
        self._rows: dict[str, list[Any]] = {TOTAL: self._zeros()}

    def _zeros(self) -> list[Any]:
        return [Money() if self.money else 0 for _ in self.span.labels]

    def add(self, segment: str, moment: Any, amount: Any) -> None:
        """Add ``amount`` to the period ``moment`` falls in (nothing outside the window)."""
        index = self.span.index(moment)
        if index is not None:
            self.put(segment, index, amount)

    def put(self, segment: str, index: int, amount: Any, total: bool = True) -> None:
        """Add ``amount`` to a period of the segment, and to the total's unless ``total`` is False."""
        for name in {segment, TOTAL} if total else {segment}:
            if name not in self._rows:
                self._rows[name] = self._zeros()
            row = self._rows[name]
            row[index] = row[index] + amount

    def __add__(self, other: "Series") -> "Series":
        """The amounts of both (over the same periods)."""
        both = Series(self.span, self.money)
        for found in (self, other):
            for name, amounts in found._rows.items():
                for index, amount in enumerate(amounts):
                    both.put(name, index, amount, total=False)
        return both

    def rows(self) -> dict[str, list[Any]]:
        """The total first, then the segments by name."""
        return {TOTAL: self._rows[TOTAL], **{name: self._rows[name] for name in sorted(self._rows) if name != TOTAL}}

    def answer(self, account: str | None) -> list[dict[str, Any]]:
        """``[{"title", "type", "values": [{"date", "value"}]}]``, the total first."""
        return [
            {
                "title": name,
                "type": "total" if name == TOTAL else "segment",
                "values": [
                    {"date": label.isoformat(), "value": money(amount, account)}
                    for label, amount in zip(self.span.labels, amounts, strict=True)
                ],
            }
            for name, amounts in self.rows().items()
        ]
