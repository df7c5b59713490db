"""What a publication of the annual summary leaves behind, as the readers of it see it (reads only):
the manifest's name and whether a year is published. flows/report/publish.py writes them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST = "MANIFEST.sha256"
PUBLICATION = "publication.json"


def publication(published_dir: Path, year: int) -> tuple[bool, str | None, str | None]:
    """Whether ``year`` is published under ``published_dir``, when, and the SHA-256 of its manifest."""
    folder = published_dir / str(year)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False, None, None
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    try:
        when = json.loads((folder / PUBLICATION).read_text(encoding="utf-8")).get("published_at")
    except (OSError, ValueError):
        when = None
    return True, when, digest
