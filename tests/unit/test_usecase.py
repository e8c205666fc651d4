import pytest
from pydantic import ValidationError

from airloop.usecase import Column, Reference, Source, UseCase
from airloop.usecases import load_use_case

FLIGHTS = load_use_case("flights")


def test_flights_declaration_is_coherent():
    assert FLIGHTS.primary_source == "flights"
    flights = FLIGHTS.source("flights")
    declared = {c.name for c in flights.columns}
    assert set(FLIGHTS.forbidden_inputs) <= declared
    assert set(FLIGHTS.known_before_event) <= declared
    assert {"dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"} == set(FLIGHTS.forbidden_inputs)
    assert [s.name for s in FLIGHTS.ordered_sources()][-1] == "flights"  # references checked last


def test_unknown_use_case():
    with pytest.raises(KeyError, match="unknown use case"):
        load_use_case("nope")


def test_unknown_source_lookup():
    with pytest.raises(KeyError, match="no source"):
        FLIGHTS.source("trains")


def test_event_source_needs_its_timestamp_column():
    with pytest.raises(ValidationError, match="event_timestamp"):
        Source(
            name="x",
            kind="event",
            event_timestamp="ts",
            key=["id"],
            columns=[Column(name="id", dtype="int64")],
        )


def test_key_must_be_declared():
    with pytest.raises(ValidationError, match="key columns"):
        Source(name="x", kind="dimension", key=["id"], columns=[Column(name="other", dtype="int64")])


def test_leaking_column_cannot_be_both_known_and_forbidden():
    data = FLIGHTS.model_dump()
    data["known_before_event"] = [*data["known_before_event"], "arr_delay"]
    with pytest.raises(ValidationError, match="known-before-event and forbidden"):
        UseCase.model_validate(data)


def test_reference_to_undeclared_source():
    data = FLIGHTS.model_dump()
    data["sources"][0]["references"] = [
        Reference(column="carrier", to_source="ghost", to_column="x").model_dump()
    ]
    with pytest.raises(ValidationError, match="unknown source"):
        UseCase.model_validate(data)


def test_an_integer_entity_named_like_its_column_is_refused_with_the_field():
    import pytest
    from pydantic import ValidationError

    from airloop.usecases import load_use_case

    grid = load_use_case("grid_peak").model_dump()
    grid["entities"]["period"] = ["period"]
    with pytest.raises(ValidationError, match=r"entities.period: its join key is named after the entity"):
        type(load_use_case("grid_peak")).model_validate(grid)


def test_a_drift_cycle_or_report_only_input_the_model_does_not_see_is_refused():
    import pytest
    from pydantic import ValidationError

    from airloop.usecases import load_use_case

    flights = load_use_case("flights").model_dump()
    flights["drift"]["cycles"]["weekdya"] = 168
    with pytest.raises(ValidationError, match=r"drift.cycles: \['weekdya'\] are not model inputs"):
        type(load_use_case("flights")).model_validate(flights)
    flights = load_use_case("flights").model_dump()
    flights["drift"]["report_only"] = ["tmep"]
    with pytest.raises(ValidationError, match=r"drift.report_only: \['tmep'\] are not model inputs"):
        type(load_use_case("flights")).model_validate(flights)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"per": ["origin", "time_hour"], "inputs": ["tmep"]},
            r"drift.shared: \['tmep'\] are not model inputs",
        ),
        (
            {"per": ["origin", "hour_of_reading"], "inputs": ["dep_minute_of_day"]},
            r"per columns \[.hour_of_reading.\]",
        ),
        ({"per": ["origin"], "inputs": ["temp"]}, r"drift.shared: \['temp'\] are in more than one group"),
    ],
)
def test_shared_drift_inputs_must_be_model_inputs_with_logged_observation_keys(change, message):
    from pydantic import ValidationError

    from airloop.usecases import load_use_case

    flights = load_use_case("flights").model_dump()
    flights["drift"]["shared"].append(change)
    with pytest.raises(ValidationError, match=message):
        type(load_use_case("flights")).model_validate(flights)


def test_section_overrides_are_validated_and_unknown_fields_refused():
    changed = FLIGHTS.with_section("model", {"judged_new_share": 0.25, "promote_inconclusive": False})
    assert changed.model.judged_new_share == 0.25 and not changed.model.promote_inconclusive
    assert FLIGHTS.model.promote_inconclusive  # the declaration itself is untouched
    with pytest.raises(ValueError, match="model has no field"):
        FLIGHTS.with_section("model", {"judged_new_shares": 0.25})
    with pytest.raises(ValidationError):
        FLIGHTS.with_section("model", {"judged_new_share": 1.0})
    with pytest.raises(ValueError, match="drift has no field"):
        FLIGHTS.with_drift({"min_new_shares": 0.1})
