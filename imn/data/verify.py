"""``imn data verify DIR``: check a local PTB-XL copy against PhysioNet's ``SHA256SUMS.txt``.

Every file the list names is hashed and compared. A file whose digest differs is a mismatch
(named with both digests), a listed file that is absent is missing, and files the list does
not name are counted but not judged. A slice of PTB-XL (such as the project's shared one)
matches on every record file; its cut ``ptbxl_database.csv`` and ``scp_statements.csv`` are
reported as mismatches, as they should be.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from tqdm import tqdm

from imn.data.dataset import EcgDataError
from imn.data.download import CHECKSUMS_FILE, read_checksums, sha256_file


@dataclasses.dataclass
class VerifyReport:
    """The outcome of :func:`verify_tree` (paths relative to ``root``)."""

    root: Path
    matched: list[str]
    mismatched: list[tuple[str, str, str]]  # (path, expected digest, actual digest)
    missing: list[str]
    unlisted: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatched and not self.missing

    def summary(self, limit: int = 20) -> str:
        listed = len(self.matched) + len(self.mismatched) + len(self.missing)
        lines = [f"{self.root}: {len(self.matched)} of {listed} listed files match {CHECKSUMS_FILE}; "
                 f"{len(self.mismatched)} differ, {len(self.missing)} missing; "
                 f"{len(self.unlisted)} files present but not listed"]
        for path, expected, actual in self.mismatched[:limit]:
            lines.append(f"  MISMATCH {path}: expected sha256 {expected}, found {actual}")
        for path in self.missing[:limit]:
            lines.append(f"  MISSING  {path}")
        hidden = max(len(self.mismatched) - limit, 0) + max(len(self.missing) - limit, 0)
        if hidden:
            lines.append(f"  ... and {hidden} more")
        return "\n".join(lines)


def verify_tree(root: str | os.PathLike, checksums: str | os.PathLike | None = None, *,
                progress: bool = False) -> VerifyReport:
    """Hash every file ``checksums`` (default ``root/SHA256SUMS.txt``) lists under ``root``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EcgDataError(f"{root} does not exist or is not a folder")
    checksums = Path(checksums) if checksums is not None else root / CHECKSUMS_FILE
    if not checksums.is_file():
        raise EcgDataError(f"{checksums} not found: pass the checksum list PhysioNet publishes "
                           f"with the dataset (--checksums)")
    expected = read_checksums(checksums)
    matched, mismatched, missing = [], [], []
    for relative, digest in tqdm(sorted(expected.items()), desc="verify", unit="file", disable=not progress):
        path = root / relative
        if not path.is_file():
            missing.append(relative)
            continue
        actual = sha256_file(path)
        if actual == digest:
            matched.append(relative)
        else:
            mismatched.append((relative, digest, actual))
    listed = set(expected) | {checksums.resolve().relative_to(root.resolve()).as_posix()
                              if checksums.resolve().is_relative_to(root.resolve()) else ""}
    unlisted = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.is_file() and p.relative_to(root).as_posix() not in listed)
    return VerifyReport(root, matched, mismatched, missing, unlisted)
