"""The data lake: raw, validated and quarantine zones on a filesystem, keyed by data interval.

Layout (Hive-style partitions, one folder per source and day)::

    <lake>/raw/<source>/ds=YYYY-MM-DD/part-0.parquet          as extracted, before any check
    <lake>/validated/<source>/ds=YYYY-MM-DD/part-0.parquet    published only when the whole day passed
    <lake>/validated/_manifest/ds=YYYY-MM-DD.json             written last: the day is complete
    <lake>/quarantine/ds=YYYY-MM-DD/                          the day's data + REPORT.md + validation.json

Every write goes to a temporary sibling and is renamed into place, so a reader sees the old partition or
the new one, never half of one; re-running a day replaces its partitions. A day lives in exactly one of
validated/ and quarantine/.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

MANIFEST = "_manifest"


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success atomically put it in ``target``'s place.

    Siblings left by an earlier writer of the same target that was killed (SIGKILL, a container killed
    mid-task) are removed first: one target has one writer at a time (a task keyed on its interval)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*target.parent.glob(f".tmp-{target.name}-*"), *target.parent.glob(f".old-{target.name}-*")]:
        logger.warning("removing %s, left by a writer that did not finish", stale)
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        if target.is_dir():
            old = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    with _staging(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=str, sort_keys=True))


class Lake:
    """Paths and atomic operations of the three zones."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- paths -------------------------------------------------------------------------------------
    def partition(self, zone: str, source: str, day: date | str) -> Path:
        return self.root / zone / source / f"ds={_ds(day)}"

    def manifest_path(self, day: date | str) -> Path:
        return self.root / "validated" / MANIFEST / f"ds={_ds(day)}.json"

    def quarantine_dir(self, day: date | str) -> Path:
        return self.root / "quarantine" / f"ds={_ds(day)}"

    # -- writes ------------------------------------------------------------------------------------
    def write_partition(
        self,
        zone: str,
        source: str,
        day: date | str,
        frame: pd.DataFrame,
        string_columns: tuple[str, ...] = (),
    ) -> Path:
        """Replace ``zone/source/ds=day`` with ``frame`` (one Parquet file), atomically.

        ``string_columns`` are stored as Arrow strings even when the frame is empty (an empty object
        column would otherwise be typed ``null`` and clash with the other partitions of the table).
        """
        target = self.partition(zone, source, day)
        with _staging(target) as tmp:
            tmp.mkdir()
            if string_columns:
                import pyarrow as pa
                import pyarrow.parquet as pq

                schema = pa.Schema.from_pandas(frame, preserve_index=False)
                for name in string_columns:
                    schema = schema.set(schema.get_field_index(name), pa.field(name, pa.string()))
                pq.write_table(
                    pa.Table.from_pandas(frame, schema=schema, preserve_index=False), tmp / "part-0.parquet"
                )
            else:
                frame.to_parquet(tmp / "part-0.parquet", index=False)
        return target

    def write_raw_bytes(self, source: str, day: date | str, files: dict[str, bytes]) -> Path:
        """Keep unreadable input byte-for-byte in the raw zone (so nothing is lost)."""
        target = self.partition("raw", source, day)
        with _staging(target) as tmp:
            tmp.mkdir()
            for name, payload in files.items():
                (tmp / name).write_bytes(payload)
        return target

    def write_dataset(self, zone: str, name: str, frame: pd.DataFrame) -> Path:
        """Replace ``zone/name.parquet`` atomically (datasets keyed by something other than a day)."""
        target = self.root / zone / f"{name}.parquet"
        with _staging(target) as tmp:
            frame.to_parquet(tmp, index=False)
        return target

    def read_dataset(self, zone: str, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.root / zone / f"{name}.parquet")

    def read_partition(self, zone: str, source: str, day: date | str) -> pd.DataFrame:
        return pd.read_parquet(self.partition(zone, source, day) / "part-0.parquet")

    def publish_day(self, day: date | str, frames: dict[str, pd.DataFrame], manifest: dict[str, Any]) -> None:
        """Write the day's checked frames to the validated zone, then its manifest, then drop quarantine.

        Each partition is replaced atomically; the manifest written last marks the day complete, so a
        crash half-way leaves a day that readers (``validated_days``) do not list yet.
        """
        self.manifest_path(day).unlink(missing_ok=True)
        for source, frame in frames.items():
            self.write_partition("validated", source, day, frame)
        write_json(self.manifest_path(day), manifest)
        shutil.rmtree(self.quarantine_dir(day), ignore_errors=True)

    def unpublish_day(self, day: date | str, sources: list[str]) -> None:
        """Withdraw a day from the validated zone: manifest first, so readers stop trusting it at once."""
        self.manifest_path(day).unlink(missing_ok=True)
        for source in sources:
            shutil.rmtree(self.partition("validated", source, day), ignore_errors=True)

    def quarantine_day(
        self, day: date | str, sources: list[str], report_md: str, result: dict[str, Any]
    ) -> Path:
        """Put the day's raw data with its readable report and full result in quarantine, atomically.

        The validated zone loses the day (if an earlier run had published it): nothing downstream can
        consume data that failed its checks.
        """
        self.unpublish_day(day, sources)
        target = self.quarantine_dir(day)
        with _staging(target) as tmp:
            tmp.mkdir()
            for source in sources:
                raw = self.partition("raw", source, day)
                if raw.exists():
                    shutil.copytree(raw, tmp / source)
            (tmp / "REPORT.md").write_text(report_md)
            (tmp / "validation.json").write_text(json.dumps(result, indent=2, default=str))
        logger.warning("quarantined %s -> %s", _ds(day), target)
        return target

    # -- reads -------------------------------------------------------------------------------------
    def validated_days(self) -> list[str]:
        """ISO dates of complete validated days, sorted."""
        folder = self.root / "validated" / MANIFEST
        if not folder.exists():
            return []
        return sorted(p.name[3:-5] for p in folder.glob("ds=*.json"))

    def quarantined_days(self) -> list[str]:
        folder = self.root / "quarantine"
        if not folder.exists():
            return []
        return sorted(p.name[3:] for p in folder.glob("ds=*") if p.is_dir())

    def manifest(self, day: date | str) -> dict[str, Any]:
        return json.loads(self.manifest_path(day).read_text())

    def row_count_history(self, source: str, before: date, days: int) -> list[int]:
        """Row counts of ``source`` in the validated days among the ``days`` days before ``before``."""
        counts = []
        for ds in self.validated_days():
            delta = (before - date.fromisoformat(ds)).days
            if 1 <= delta <= days:
                counts.append(int(self.manifest(ds)["rows"][source]))
        return counts

    def read_validated(self, source: str, days: list[str] | None = None) -> pd.DataFrame:
        """Concatenate validated partitions of ``source`` (all complete days, or the given ones)."""
        wanted = self.validated_days() if days is None else days
        frames = [self.read_partition("validated", source, ds) for ds in wanted]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _ds(day: date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()
