import pandas as pd
import pytest

from airloop.lake import Lake, write_json


@pytest.fixture()
def lake(tmp_path):
    return Lake(tmp_path / "lake")


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"a": range(n)})


def test_partition_is_replaced_not_appended(lake):
    lake.write_partition("raw", "flights", "2013-01-01", frame(5))
    lake.write_partition("raw", "flights", "2013-01-01", frame(3))
    folder = lake.partition("raw", "flights", "2013-01-01")
    assert folder.name == "ds=2013-01-01" and folder.parent.name == "flights"
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]
    assert len(lake.read_partition("raw", "flights", "2013-01-01")) == 3
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_failed_write_leaves_old_partition(lake, monkeypatch):
    lake.write_partition("raw", "flights", "2013-01-01", frame(5))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError):
        lake.write_partition("raw", "flights", "2013-01-01", frame(3))
    monkeypatch.undo()
    assert len(lake.read_partition("raw", "flights", "2013-01-01")) == 5
    assert not [p for p in lake.partition("raw", "flights", "x").parent.iterdir() if p.name.startswith(".")]


def test_day_lives_in_exactly_one_zone(lake):
    frames = {"flights": frame(4), "weather": frame(2)}
    for source, f in frames.items():
        lake.write_partition("raw", source, "2013-01-01", f)
    lake.publish_day("2013-01-01", frames, {"rows": {"flights": 4, "weather": 2}})
    assert lake.validated_days() == ["2013-01-01"] and lake.quarantined_days() == []
    lake.quarantine_day("2013-01-01", ["flights", "weather"], "# bad", {"failures": ["x"]})
    assert lake.validated_days() == [] and lake.quarantined_days() == ["2013-01-01"]
    assert not lake.partition("validated", "flights", "2013-01-01").exists()
    q = lake.quarantine_dir("2013-01-01")
    assert (q / "REPORT.md").read_text() == "# bad" and (q / "flights" / "part-0.parquet").exists()
    lake.publish_day("2013-01-01", frames, {"rows": {"flights": 4, "weather": 2}})
    assert lake.validated_days() == ["2013-01-01"] and lake.quarantined_days() == []


def test_row_count_history_window(lake):
    for ds, n in [("2013-01-01", 10), ("2013-01-02", 20), ("2013-01-10", 30)]:
        write_json(lake.manifest_path(ds), {"rows": {"flights": n}})
    from datetime import date

    assert lake.row_count_history("flights", date(2013, 1, 3), 14) == [10, 20]
    assert lake.row_count_history("flights", date(2013, 1, 3), 1) == [20]
    assert lake.row_count_history("flights", date(2013, 1, 1), 14) == []


def test_a_killed_writers_leftovers_go_with_the_next_write(lake):
    """SIGKILL (a task container killed mid-write) skips the clean-up; the retry's write removes them."""
    lake.write_dataset("training", "w/train", frame(5))
    folder = lake.root / "training" / "w"
    (folder / ".tmp-train.parquet-deadbeef").write_bytes(b"half a parquet file")
    (folder / ".old-train.parquet-cafebabe").mkdir()
    (folder / ".tmp-holdout.parquet-0badf00d").write_bytes(b"another target's")
    lake.write_dataset("training", "w/train", frame(3))
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-holdout.parquet-0badf00d", "train.parquet"]
    assert len(lake.read_dataset("training", "w/train")) == 3
