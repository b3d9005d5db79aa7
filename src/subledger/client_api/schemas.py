"""Export Analytics API request bodies."""

from typing import Literal

from subledger.core.fields import Strict

Format = Literal["json", "csv"]


class PlacementFilters(Strict):
    placement_type: Literal["paywall", "onboarding"]


class PlacementInfoIn(Strict):
    """The contract's PlacementInfoRequest; ``format`` as the other operations take it."""

    filters: PlacementFilters
    format: Format = "json"
