"""Scheduled list loading: CSV files dropped in a campaign's inbox folder are imported once.

A file is claimed by renaming it (atomic on one filesystem), so with several workers watching
the same folder exactly one imports it. After the import it moves to ``processed/`` beside its
reject report; a file that cannot be imported at all moves to ``failed/`` with the reason.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine

from dialer.errors import DialerError
from dialer.importer import import_file, summary_json

log = logging.getLogger(__name__)


def scan_inbox(engine: Engine, campaign: str, folder: Path, worker_id: str) -> list[Path]:
    """Import every ``*.csv`` in `folder` into `campaign`; returns the files this call imported."""
    if not folder.is_dir():
        return []
    done: list[Path] = []
    for path in sorted(folder.glob("*.csv")):
        claimed = path.with_name(f"{path.name}.importing-{worker_id}")
        try:
            path.rename(claimed)
        except OSError:
            continue  # another worker took it first
        processed = folder / "processed"
        processed.mkdir(exist_ok=True)
        rejects = processed / f"{path.stem}.rejects.csv"
        try:
            summary = import_file(engine, campaign, claimed, rejects=rejects, commit_chunks=True, pause_gc=False)
        except DialerError as exc:
            failed = folder / "failed"
            failed.mkdir(exist_ok=True)
            claimed.rename(failed / path.name)
            (failed / f"{path.name}.error.txt").write_text(f"{exc}\n", encoding="utf-8")
            log.error("inbox %s: %s not imported: %s", folder, path.name, exc)
            continue
        claimed.rename(processed / path.name)
        summary.file = str(path)
        (processed / f"{path.stem}.summary.json").write_text(summary_json(summary) + "\n", encoding="utf-8")
        log.info("inbox %s: imported %s: %s", folder, path.name, summary_json(summary))
        done.append(processed / path.name)
    return done
