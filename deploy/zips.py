"""Zip entries as Lambda unpacks them, the same on every build."""

from __future__ import annotations

import zipfile
from pathlib import Path

# One fixed time for every entry: nothing of the moment of the build reaches a zip.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def file_entry(name: str, *, executable: bool = False) -> zipfile.ZipInfo:
    """A regular file's entry with a normalised mode, deflated."""
    entry = zipfile.ZipInfo(name, ZIP_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    mode = 0o755 if executable else 0o644
    entry.external_attr = (0o100000 | mode) << 16  # a regular file
    entry.create_system = 3  # Unix, so Lambda keeps the modes
    return entry


def unzipped_size(zip_path: Path) -> int:
    """The bytes a zip takes once extracted, as Lambda counts them against its limit."""
    with zipfile.ZipFile(zip_path) as archive:
        return sum(entry.file_size for entry in archive.infolist())
