"""Custom Great Expectations 1.x expectations that the core set lacks.

Imported lazily by ``airloop.validation`` (importing registers them with GX).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, MulticolumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial
from great_expectations.expectations.metrics.map_metric_provider import MulticolumnMapMetricProvider
from great_expectations.expectations.metrics.map_metric_provider.multicolumn_condition_partial import (
    multicolumn_condition_partial,
)


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


class MulticolumnValuesCrossCheck(MulticolumnMapMetricProvider):
    """Row-wise: the row obeys a declared cross-field rule (``airloop.crosscheck``)."""

    condition_metric_name = "multicolumn_values.airloop_cross_check"
    condition_domain_keys = (
        "batch_id",
        "table",
        "column_list",
        "row_condition",
        "condition_parser",
        "ignore_row_if",
    )
    condition_value_keys = ("rule",)

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(
        cls,  # noqa: N805 - multicolumn_condition_partial calls this function with the metric class first
        column_list: pd.DataFrame,
        rule: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> pd.Series:
        from pydantic import TypeAdapter

        from airloop.crosscheck import agrees
        from airloop.usecase import CrossCheck

        return agrees(column_list, TypeAdapter(CrossCheck).validate_python(rule))


class ExpectRowsToPassCrossCheck(MulticolumnMapExpectation):
    """Expect each row's ``column_list`` values to agree as the declared ``rule`` says (e.g. year, month
    and day equal the local date of the event time); rows with a null in those columns are skipped."""

    map_metric = "multicolumn_values.airloop_cross_check"
    success_keys = ("mostly", "rule")
    rule: dict[str, Any]
    ignore_row_if: str = "any_value_is_missing"
