"""Second use case: will the next half-hour be a high-demand period on Victoria's electricity grid?

Data: half-hourly operational electricity demand of Victoria, Australia, in 2014 (AEMO) with the
Melbourne temperature (Bureau of Meteorology site 086071), vendored as a CSV under
``include/data/vic_elec`` (provenance and licence in its README). One row per half-hour, 48 a day,
stamped with the start of the half-hour in NEM market time - Australian Eastern Standard Time all year
(UTC+10, no daylight saving), the zone ``Australia/Brisbane`` keeps - written without an offset, so the
declaration says which zone those wall-clock times are in.

How it differs from flights: one regular stream instead of ~1,000 irregular events a day; integer entity
keys (the half-hour of the day, 1..48, and the composite (workday, half-hour)); a label on a continuous
measure (``demand_gw > 5.0``; 32% of the year, 12-56% by month) with no cancelled/diverted statuses;
numeric-heavy inputs; a CSV source; a drift policy sized for 48 rows a day.

The request carries the temperature expected for the half-hour; the recorded data holds the observed
temperature, which stands in for a (perfect) forecast. Everything else the model sees is known before the
half-hour starts: how demand behaved in the same half-hour over the last days.
"""

from __future__ import annotations

from datetime import date

from airloop.usecase import (
    Column,
    DemoSpan,
    DriftPolicy,
    FeatureSet,
    HistoryFeatures,
    Label,
    ModelSpec,
    RowCountRule,
    ShadowPolicy,
    Source,
    UseCase,
)

HIGH_DEMAND_GW = 5.0

demand = Source(
    name="demand",
    kind="event",
    description="Operational demand of the Victorian region per half-hour, with the Melbourne temperature.",
    event_timestamp="period_start",
    key=["period_start"],
    columns=[
        Column(
            name="period_start",
            dtype="timestamp",
            timezone="Australia/Brisbane",
            description="start of the half-hour, NEM market time (AEST, UTC+10), no offset in the data",
        ),
        Column(
            name="period",
            dtype="int64",
            min_value=1,
            max_value=48,
            description="half-hour of the day, 1 = 00:00",
        ),
        Column(name="workday", dtype="int64", min_value=0, max_value=1, description="1 on working days"),
        Column(name="temperature", dtype="float64", min_value=-10, max_value=50, description="degrees C"),
        # The outcome: known only once the half-hour is over.
        Column(
            name="demand_gw", dtype="float64", min_value=0.5, max_value=15, description="GW, half-hour mean"
        ),
    ],
    # 48 half-hours a day in market time (no DST days of 46 or 50).
    row_count=RowCountRule(min_rows=48, max_rows=48),
)


def request_features(inputs):
    """Request-time features of a half-hour (Feast on-demand transform, online and offline alike):
    the hour of the day, the working-day flag, and the temperature as heating and cooling degrees around
    18 C (demand rises on both sides: heaters in winter, air conditioners in summer)."""
    import numpy as np
    import pandas as pd

    period = inputs["period"].to_numpy().astype("int64")
    temperature = inputs["temperature"].to_numpy().astype("float64")
    return pd.DataFrame(
        {
            "hour_of_day": (period - 1) // 2,
            "temperature_c": temperature,
            "heating_degrees": np.maximum(18.0 - temperature, 0.0),
            "cooling_degrees": np.maximum(temperature - 18.0, 0.0),
            "is_workday": inputs["workday"].to_numpy().astype("int64"),
        },
        index=inputs.index,
    )


_HISTORY = dict(
    measure="demand_gw",
    above=HIGH_DEMAND_GW,
    known_after_minutes=30,
    share_name="high_share",
    mean_name="mean_gw",
    count_name="periods",
)

FEATURES = FeatureSet(
    service="grid_peak_v1",
    event_time_column="period_start",  # we predict at the start of the half-hour
    histories=[
        # How did this half-hour of the day run over the last week / four weeks?
        HistoryFeatures(name="half_hour_history", entity="half_hour", windows_days=[7, 28], **_HISTORY),
        # ... and on days of the same kind (working day or not) over four weeks.
        HistoryFeatures(name="daytype_history", entity="daytype_half_hour", windows_days=[28], **_HISTORY),
    ],
    request_fields={"period": "int64", "workday": "int64", "temperature": "float64"},
    request_transform="airloop.usecases.grid_peak:request_features",
    request_schema={
        "hour_of_day": "int64",
        "temperature_c": "float64",
        "heating_degrees": "float64",
        "cooling_degrees": "float64",
        "is_workday": "int64",
    },
    defaults={
        # 2014 averages: a neutral guess for a half-hour without history.
        **{
            f"half_hour_{s}_{w}d": v
            for w in (7, 28)
            for s, v in (("high_share", 0.32), ("mean_gw", 4.6), ("periods", 0.0))
        },
        "daytype_half_hour_high_share_28d": 0.32,
        "daytype_half_hour_mean_gw_28d": 4.6,
        "daytype_half_hour_periods_28d": 0.0,
    },
)

_NUMERIC = [
    "temperature_c",
    "heating_degrees",
    "cooling_degrees",
    *[f"half_hour_{s}_{w}d" for w in (7, 28) for s in ("high_share", "mean_gw", "periods")],
    "daytype_half_hour_high_share_28d",
    "daytype_half_hour_mean_gw_28d",
    "daytype_half_hour_periods_28d",
    "half_hour_history__missing",
    "daytype_history__missing",
]

MODEL = ModelSpec(
    categorical=["hour_of_day", "is_workday"],
    numeric=_NUMERIC,
    # a year: all of 2014's history (the year-long replay, `--use-case grid_peak`: all history lost
    # 0.003 to the static champion over July-December, a 150-day trailing window 0.015)
    train_days=365,
    holdout_days=30,
    hyperparameters={
        "epochs": 40,
        "batch_size": 256,
        "learning_rate": 0.002,
        "hidden": 128,
        "dropout": 0.1,
        "weight_decay": 1e-4,
        "patience": 6,
        "seed": 13,
    },
    min_auc=0.7,
    tolerance=0.01,
    # The label is absolute (demand above 5 GW): which days peak - a cold snap's, a heatwave's - is most of
    # the question, and a day's own ranking of its 48 half-hours does not see it (the year-long replay,
    # session 27: pooled, every all-history policy beats the static champion every month; day by day none).
    live_measure="pooled",
    # A retrain the holdout cannot separate from its champion (its interval spans both -tolerance and 0) has
    # the newer days: promoted, the replaced champion to shadow. In the year-long replay (pooled, with the
    # drift policy's min_new_share) the two such retrains scored above the champion they would replace on
    # their next 28 days (+0.0024, +0.0033); promoting them took the loop from +0.0162 to +0.0163.
    promote_inconclusive=True,
    # 48 half-hours a day: a week of shadow evidence is 336 rows (the default 2,000 would take six weeks,
    # longer than max_days, and no comparison could ever end but undecided).
    shadow=ShadowPolicy(min_rows=336),
    # Every recent-history statistic of the half-hour set low (3.6 GW, never high) or high (5.8 GW, always
    # high): values inside the range the data has, consistent across windows; the weather is left as it is.
    obvious_low_risk={
        **{f"half_hour_mean_gw_{w}d": 3.6 for w in (7, 28)},
        **{f"half_hour_high_share_{w}d": 0.0 for w in (7, 28)},
        "daytype_half_hour_mean_gw_28d": 3.6,
        "daytype_half_hour_high_share_28d": 0.0,
    },
    obvious_high_risk={
        **{f"half_hour_mean_gw_{w}d": 5.8 for w in (7, 28)},
        **{f"half_hour_high_share_{w}d": 1.0 for w in (7, 28)},
        "daytype_half_hour_mean_gw_28d": 5.8,
        "daytype_half_hour_high_share_28d": 1.0,
    },
)

USE_CASE = UseCase(
    name="grid_peak",
    description=__doc__ or "",
    timezone="Australia/Brisbane",
    start_date=date(2014, 1, 1),
    end_date=date(2014, 12, 31),
    schedule="@daily",
    sources=[demand],
    primary_source="demand",
    entities={"half_hour": ["period"], "daytype_half_hour": ["workday", "period"]},
    label=Label(
        name="high_demand",
        source="demand",
        definition=f"demand_gw > {HIGH_DEMAND_GW} GW over the half-hour",
        column="demand_gw",
        rule="above",
        threshold=HIGH_DEMAND_GW,
        positive_status="high",
        negative_status="normal",
    ),
    known_before_event=["period_start", "period", "workday", "temperature"],
    forbidden_inputs=["demand_gw"],
    model_name="grid_peak",
    slice_columns=["workday"],
    replay_data="include/data/vic_elec",
    features=FEATURES,
    model=MODEL,
    # 48 rows a day: a window of a week (336 rows) is checked, at the latest a week after the last check.
    drift=DriftPolicy(
        # a week's window holds whole cycles; a shorter one (max_wait) judges neither
        cycles={"is_workday": 7 * 24, "hour_of_day": 24},
        min_rows=336,
        new_rows=336,
        max_wait_minutes=7 * 24 * 60,
        cooldown_hours=72,
        # A week of half-hours always alerts on temperature against months of reference, so what paces the
        # loop is how much a retrain would add: 15% more half-hours than the champion was fit on (~5 weeks
        # in July, ~7 in December). In the year-long replay (pooled): 5 retrains, +0.0163 mean monthly ROC
        # AUC over the static champion; without it a retrain every week (26), +0.0140.
        min_new_share=0.15,
        min_labelled_rows=200,
        # Not monitored: the missing flags, and the history counts - they measure how complete a window of
        # history is (short in the first weeks of the data, then constant), not how the grid behaves.
        ignore=[
            "half_hour_history__missing",
            "daytype_history__missing",
            "half_hour_periods_7d",
            "half_hour_periods_28d",
            "daytype_half_hour_periods_28d",
        ],
    ),
    # make demo USE_CASE=grid_peak: January-June history (v1 trains on January-May, holdout June), two weeks
    # of July (midwinter) as live traffic, then a week more.
    demo=DemoSpan(first_day=date(2014, 1, 1), last_day=date(2014, 6, 30), live_days=14, after_days=7),
)
