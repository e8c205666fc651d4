"""Custom Great Expectations 1.x expectations that the core set lacks.

Imported lazily by ``airloop.validation`` (importing registers them with GX).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial


class ColumnValuesAreClockTimes(ColumnMapMetricProvider):
    """Row-wise: the value is an integer ``HHMM`` clock time (0..2359, minutes < 60; 2400 if allowed)."""

    condition_metric_name = "column_values.airloop_clock_time"
    condition_value_keys = ("allow_2400",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls,  # noqa: N805 - column_condition_partial calls this function with the metric class first
        column: pd.Series,
        allow_2400: bool = False,
        **kwargs: Any,
    ) -> pd.Series:
        values = pd.to_numeric(column, errors="coerce")
        ok = (values >= 0) & (values <= 2359) & (values % 100 < 60) & (values == values.round())
        return ok | (values == 2400) if allow_2400 else ok


class ExpectColumnValuesToBeClockTimes(ColumnMapExpectation):
    """Expect column values to be ``HHMM`` clock times, e.g. 515 = 05:15 (nulls are ignored)."""

    map_metric = "column_values.airloop_clock_time"
    success_keys = ("mostly", "allow_2400")
    allow_2400: bool = False
