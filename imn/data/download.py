"""Download PTB-XL from PhysioNet: checksummed, resumable, standard-library HTTP only.

Two sources hold the same files:

* ``mode="files"`` (default): PhysioNet's per-file tree. ``SHA256SUMS.txt`` is fetched first,
  then every file it lists, by a small thread pool (the dataset is tens of thousands of small
  files, so latency, not bandwidth, bounds a single connection). ``sampling_rate=100`` (or
  500) fetches only ``records100/`` (``records500/``) plus the top-level files (the CSVs), a
  fraction of the bytes.
* ``mode="zip"``: the published zip, one large file, extracted by :func:`safe_extract` and
  then checked against the ``SHA256SUMS.txt`` inside it. ``sampling_rate`` limits what is
  extracted (the zip itself always holds both rates).

Every transfer is written to ``NAME.part`` and renamed to ``NAME`` only once it is complete
and, where a checksum is known, verified: a file under its final name is always whole. An
interrupted transfer resumes from its ``.part`` with an HTTP ``Range`` request (a server that
ignores the range and sends the whole file again is handled by starting over). Transient
failures (connection errors, time-outs, HTTP 5xx/408/429, a body shorter than its
``Content-Length``) are retried with exponential back-off; a file whose checksum is wrong is
downloaded once more and then reported with both hashes. A re-run re-hashes the files already
present and downloads nothing for those that match, so it does no network work at all once
everything is complete (``SHA256SUMS.txt`` itself is reused: PhysioNet versions are immutable).

Command line (wired into ``imn data`` by :func:`add_download_parser`)::

    imn data download ptb-xl --dest ~/data/ptb-xl --sampling-rate 100

The folder returned by :func:`download_ptbxl` is what :func:`imn.data.ptbxl.load_ptbxl`
takes as ``root``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import ssl
import stat
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import quote, unquote, urljoin, urlsplit

from tqdm.auto import tqdm

from imn.data.dataset import SUPPORTED_SAMPLING_RATES, EcgDataError
from imn.provenance import file_sha256 as sha256_file

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://physionet.org/files/ptb-xl/1.0.3/"
DEFAULT_ZIP_URL = (
    "https://physionet.org/static/published-projects/ptb-xl/"
    "ptb-xl-a-large-publicly-available-electrocardiography-dataset-1.0.3.zip"
)
CHECKSUMS_FILE = "SHA256SUMS.txt"
MODES = ("files", "zip")
DATASETS = ("ptb-xl",)

USER_AGENT = "imn-ecg (python urllib)"
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 1.0  # seconds before the first retry; doubled for each further one
MAX_BACKOFF = 60.0
DEFAULT_TIMEOUT = 60.0  # seconds without data before a request counts as failed
_CHUNK = 1 << 18  # bytes per read/write: large enough to be cheap, small enough for progress
# Status codes worth retrying: the server or something in between is busy or broken for now.
_TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


# ======================================================================== errors
class DownloadError(EcgDataError):
    """A download or extraction failed; the message names the URL or file and the problem.

    A subclass of ``EcgDataError`` so that the ``imn`` command reports it like any other
    data problem: one line, no traceback.
    """


class UnsafeArchiveError(DownloadError):
    """A zip member would land outside the destination (``..``, absolute path, symlink)."""


class CorruptArchiveError(DownloadError):
    """A zip that cannot be read back (truncated, bad CRC) or whose files fail their checksums."""


class _Transient(Exception):
    """A failure worth retrying (the connection broke, the body was cut short, HTTP 503...)."""


# ======================================================================== public API
def download_ptbxl(
    dest: str | os.PathLike,
    *,
    sampling_rate: int | None = None,
    base_url: str = DEFAULT_BASE_URL,
    zip_url: str = DEFAULT_ZIP_URL,
    mode: str = "files",
    workers: int = 4,
    progress: bool = True,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download (or finish downloading) PTB-XL into ``dest``; return its root folder.

    Args:
      dest: destination folder (created if needed). Re-running with the same ``dest``
        resumes: complete, verified files are not downloaded again.
      sampling_rate: 100 or 500: only that rate's records; ``None``: both.
      base_url: the per-file tree (``mode="files"``), ending in the version folder.
      zip_url: the published zip (``mode="zip"``).
      mode: ``"files"`` (per-file tree, parallel, can skip the other rate's files) or
        ``"zip"`` (one large download, kept in ``dest`` after extraction).
      workers: parallel transfers in ``"files"`` mode.
      progress: show a tqdm bar on stderr.
      retries: retries of a transfer that keeps failing without making progress.
      backoff: seconds before the first retry (doubled for each further one).
      timeout: seconds a request may wait for data.

    Returns:
      The folder holding ``ptbxl_database.csv`` and ``records100/``/``records500/``: ``dest``
      in ``"files"`` mode, the zip's top folder inside ``dest`` in ``"zip"`` mode. Pass it to
      :func:`imn.data.ptbxl.load_ptbxl`.

    Raises:
      DownloadError: a file could not be fetched, failed its checksum twice, or the zip is
        unsafe or corrupt; the message names the URL or file.
      ValueError: an unknown ``mode`` or ``sampling_rate``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if sampling_rate is not None and sampling_rate not in SUPPORTED_SAMPLING_RATES:
        raise ValueError(
            f"sampling_rate must be one of {SUPPORTED_SAMPLING_RATES} or None, "
            f"got {sampling_rate!r}"
        )
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    net = _Net(retries=retries, backoff=backoff, timeout=timeout)
    if mode == "zip":
        return _download_zip(dest, zip_url, sampling_rate, progress=progress, net=net)
    return _download_files(dest, base_url, sampling_rate, workers=workers, progress=progress,
                           net=net)


def fetch(
    url: str,
    path: str | os.PathLike,
    *,
    expected_sha256: str | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = False,
) -> Path:
    """Download ``url`` to ``path``: resumable, retried, and verified when a hash is given.

    An existing ``path`` is kept without any request if it matches ``expected_sha256`` (or,
    with no hash given, simply because it exists: only complete transfers are ever renamed
    to ``path``). Otherwise the bytes go to ``path + ".part"``, resuming what an earlier
    attempt left there. A checksum mismatch discards the file and downloads it once more.

    Args:
      url: what to fetch (http, https; ``file:`` works too, without resuming).
      path: where to put it; parent folders are created.
      expected_sha256: hex SHA-256 the file must have.
      retries: retries of a transfer that keeps failing without making progress.
      backoff: seconds before the first retry (doubled for each further one).
      timeout: seconds a request may wait for data.
      progress: show a byte-count tqdm bar on stderr (for a single large file).

    Returns:
      ``path``.

    Raises:
      DownloadError: HTTP 4xx, retries exhausted, or a checksum mismatch on the second try.
    """
    return _fetch(url, Path(path), expected_sha256,
                  _Net(retries=retries, backoff=backoff, timeout=timeout),
                  progress=progress)[0]


def safe_extract(
    zip_path: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    members: Callable[[str], bool] | None = None,
    progress: bool = False,
) -> list[Path]:
    """Extract a zip into ``dest``, refusing anything that could write elsewhere.

    Every member is checked before anything is written: an absolute name (``/x``, ``C:x``,
    ``\\\\x``), a name that resolves outside ``dest`` (``../x``, or through a symlink already
    inside ``dest``), a symlink or other special file refuses the whole archive, so a refused
    archive leaves ``dest`` untouched. File modes in the zip are ignored. Each file is written
    to a ``.part`` and renamed, so an interrupted extraction leaves no half-written file.

    Args:
      zip_path: the archive.
      dest: the folder to extract into (created if needed).
      members: optional filter on member names; members it rejects are skipped.
      progress: show a tqdm bar (members extracted) on stderr.

    Returns:
      The paths of the files written.

    Raises:
      UnsafeArchiveError: a member is unsafe (names the archive and the member).
      CorruptArchiveError: the archive cannot be read or a member fails its CRC.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written: list[Path] = []
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = [i for i in archive.infolist() if members is None or members(i.filename)]
            targets = [_checked_target(zip_path, info, root) for info in infos]
            for info, target in tqdm(list(zip(infos, targets)), desc="extracting",
                                     unit="file", disable=not progress):
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    _extract_member(archive, info, target)
                    written.append(target)
    except (zipfile.BadZipFile, EOFError) as err:
        raise CorruptArchiveError(f"{zip_path}: corrupt zip archive: {err}") from err
    return written


# ======================================================================== per-file mode
def _download_files(dest: Path, base_url: str, sampling_rate: int | None, *, workers: int,
                    progress: bool, net: _Net) -> Path:
    """Fetch SHA256SUMS.txt, then every wanted file it lists (in parallel)."""
    if not base_url.endswith("/"):
        base_url += "/"  # urljoin would otherwise replace the version folder
    sums_path = dest / CHECKSUMS_FILE
    _fetch(urljoin(base_url, CHECKSUMS_FILE), sums_path, None, net)
    try:
        entries = read_checksums(sums_path)
    except DownloadError:
        # A garbled list must not stick: the next run fetches it afresh.
        sums_path.unlink(missing_ok=True)
        raise
    wanted = [(rel, sha) for rel, sha in entries.items() if _wanted(rel, sampling_rate)]
    if not wanted:
        raise DownloadError(f"{sums_path}: lists no files to download")

    bar = tqdm(total=len(wanted), desc="PTB-XL", unit="file", disable=not progress)
    downloaded_bytes = 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ptbxl-download")
    try:
        futures: set[Future] = {
            pool.submit(_fetch, urljoin(base_url, quote(rel)), dest / rel, sha, net)
            for rel, sha in wanted
        }
        while futures:
            done, futures = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                path, fetched = future.result()  # raises the worker's DownloadError
                if fetched:
                    downloaded_bytes += path.stat().st_size
                    bar.set_postfix_str(f"{downloaded_bytes / 1e6:.1f} MB downloaded",
                                        refresh=False)
                bar.update(1)
    finally:
        # On an error (or Ctrl-C), drop the queued files; transfers already running finish
        # or stop on their own, and their .part files let the next run resume.
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    logger.info("PTB-XL: %d files verified in %s (%.1f MB downloaded)", len(wanted), dest,
                downloaded_bytes / 1e6)
    return dest


def read_checksums(path: str | os.PathLike) -> dict[str, str]:
    """Parse a ``sha256sum``-style list (``<hex digest> <relative path>`` per line).

    Returns ``{relative path: digest}``. Paths are checked, since they become file names
    under the destination: an absolute path or one with ``..`` raises ``DownloadError``.
    """
    path = Path(path)
    entries: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DownloadError(f"cannot read the checksum list {path}: {err}") from err
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        digest = parts[0].lower()
        # sha256sum writes "*name" for files hashed in binary mode.
        rel = parts[1].lstrip("*").strip() if len(parts) == 2 else ""
        if not _SHA256.fullmatch(digest) or not rel:
            raise DownloadError(f"{path}, line {number}: expected '<sha256> <path>', got {line!r}")
        if not _is_safe_relative(rel):
            raise DownloadError(f"{path}, line {number}: refusing the unsafe path {rel!r}")
        entries[rel] = digest
    return entries


def _wanted(rel: str, sampling_rate: int | None) -> bool:
    """Whether a file (path relative to the PTB-XL root) is needed for ``sampling_rate``."""
    if sampling_rate is None:
        return True
    other = {100: "records500/", 500: "records100/"}[sampling_rate]
    return not rel.startswith(other)


def _is_safe_relative(rel: str) -> bool:
    """A relative POSIX path with no ``..``, no drive, no backslash, no NUL."""
    if "\\" in rel or "\0" in rel or PureWindowsPath(rel).drive:
        return False
    pure = PurePosixPath(rel)
    return not pure.is_absolute() and ".." not in pure.parts


# ======================================================================== zip mode
def _download_zip(dest: Path, zip_url: str, sampling_rate: int | None, *, progress: bool,
                  net: _Net) -> Path:
    """Fetch the zip, extract (part of) it safely, verify; a corrupt zip is fetched again once."""
    name = PurePosixPath(unquote(urlsplit(zip_url).path)).name or "ptb-xl.zip"
    zip_path = dest / name
    marker = dest / f".{name}.extracted.json"
    root = _completed_extraction(marker, dest, sampling_rate)
    if root is not None:
        logger.info("PTB-XL already extracted to %s (per %s)", root, marker)
        return root
    for attempt in (1, 2):
        _fetch(zip_url, zip_path, None, net, progress=progress)
        try:
            root = _extract_and_verify(zip_path, dest, sampling_rate, progress=progress)
            break
        except CorruptArchiveError as err:
            if attempt == 2:
                raise CorruptArchiveError(f"{zip_url}: still corrupt after downloading it "
                                          f"again: {err}") from err
            logger.warning("%s; downloading %s again", err, zip_url)
            zip_path.unlink(missing_ok=True)
    marker.write_text(json.dumps({"root": root.relative_to(dest).as_posix(),
                                  "sampling_rate": sampling_rate, "url": zip_url}))
    return root


def _completed_extraction(marker: Path, dest: Path, sampling_rate: int | None) -> Path | None:
    """The root of an earlier, verified extraction that covers ``sampling_rate``, if any."""
    try:
        done = json.loads(marker.read_text())
        root = dest / done["root"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    covers = done.get("sampling_rate") in (None, sampling_rate)
    return root if covers and (root / "ptbxl_database.csv").is_file() else None


def _extract_and_verify(zip_path: Path, dest: Path, sampling_rate: int | None, *,
                        progress: bool) -> Path:
    """Extract the wanted members and check them against the zip's SHA256SUMS.txt."""
    prefix = _archive_prefix(zip_path)

    def member_wanted(name: str) -> bool:
        return _wanted(name[len(prefix):], sampling_rate) if name.startswith(prefix) else True

    logger.info("extracting %s into %s", zip_path, dest)
    safe_extract(zip_path, dest, members=member_wanted, progress=progress)
    root = dest / prefix if prefix else dest
    sums_path = root / CHECKSUMS_FILE
    if not sums_path.is_file():
        logger.warning("%s has no %s; its files are not verified", zip_path, CHECKSUMS_FILE)
        return root
    entries = [(rel, sha) for rel, sha in read_checksums(sums_path).items()
               if _wanted(rel, sampling_rate)]
    for rel, expected in tqdm(entries, desc="verifying", unit="file", disable=not progress):
        path = root / rel
        if not path.is_file():
            raise CorruptArchiveError(f"{zip_path}: {rel} is listed in {CHECKSUMS_FILE} but "
                                      f"missing from the archive")
        actual = sha256_file(path)
        if actual != expected:
            raise CorruptArchiveError(f"{zip_path}: {rel} fails its checksum: expected sha256 "
                                      f"{expected}, got {actual}")
    return root


def _archive_prefix(zip_path: Path) -> str:
    """The folder inside the zip that holds ``ptbxl_database.csv`` (``""`` if at the top)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, EOFError) as err:
        raise CorruptArchiveError(f"{zip_path}: corrupt zip archive: {err}") from err
    hits = sorted((n for n in names if PurePosixPath(n).name == "ptbxl_database.csv"),
                  key=lambda n: n.count("/"))
    if not hits:
        raise DownloadError(f"{zip_path}: no ptbxl_database.csv inside; is this the PTB-XL zip?")
    return hits[0][: -len("ptbxl_database.csv")]


def _checked_target(zip_path: Path, info: zipfile.ZipInfo, root: Path) -> Path:
    """Where a member may be extracted, or ``UnsafeArchiveError``."""
    name = info.filename
    mode = info.external_attr >> 16  # Unix st_mode when the zip was made on Unix, else 0
    if stat.S_ISLNK(mode):
        raise UnsafeArchiveError(f"{zip_path}: refusing the symlink member {name!r}")
    # writestr() leaves the type bits 0; only an explicit other type is refused.
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UnsafeArchiveError(f"{zip_path}: refusing the special-file member {name!r}")
    if (name.startswith(("/", "\\")) or PureWindowsPath(name).drive or "\\" in name
            or "\0" in name):
        raise UnsafeArchiveError(f"{zip_path}: refusing the absolute or non-POSIX member "
                                 f"name {name!r}")
    # resolve() also follows symlinks already present under dest, so none can redirect us.
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise UnsafeArchiveError(f"{zip_path}: refusing the member {name!r}, which would be "
                                 f"written outside {root}")
    return target


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with archive.open(info) as source, open(part, "wb") as out:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)


# ======================================================================== one file over HTTP
@dataclass(frozen=True)
class _Net:
    """Retry and time-out settings shared by every transfer of one download."""

    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    timeout: float = DEFAULT_TIMEOUT


def _fetch(url: str, path: Path, expected: str | None, net: _Net, *,
           progress: bool = False) -> tuple[Path, bool]:
    """:func:`fetch`; also says whether anything was downloaded (``False``: already there)."""
    expected = expected.lower() if expected else None
    if path.is_file():
        if expected is None or sha256_file(path) == expected:
            return path, False
        logger.warning("%s does not match its checksum; downloading it again", path)
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    for attempt in (1, 2):
        _download_with_retries(url, part, net, progress=progress)
        actual = sha256_file(part) if expected else None
        if actual == expected:
            os.replace(part, path)
            return path, True
        # Do not resume from these bytes: some of them are wrong.
        part.unlink()
        if attempt == 1:
            logger.warning("%s: sha256 %s instead of %s; downloading it again",
                           url, actual, expected)
    raise DownloadError(
        f"{path} (from {url}) is corrupt: expected sha256 {expected}, got {actual} "
        f"on two downloads"
    )


def _download_with_retries(url: str, part: Path, net: _Net, *, progress: bool) -> None:
    """Complete ``part`` from ``url``, retrying transient failures with exponential back-off.

    The retry budget counts only attempts that made no progress, so a slow but working
    connection that keeps dropping still finishes a large file.
    """
    bar = tqdm(desc=part.name[: -len(".part")], unit="B", unit_scale=True, unit_divisor=1024,
               disable=not progress)

    def report(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    failures = 0
    best = _size(part)
    try:
        while True:
            try:
                _transfer(url, part, net.timeout, report)
                return
            except _Transient as err:
                if _size(part) > best:
                    best, failures = _size(part), 0
                failures += 1
                if failures > net.retries:
                    raise DownloadError(f"{url}: giving up after {failures} failed attempts "
                                        f"in a row: {err}") from err
                delay = min(net.backoff * 2 ** (failures - 1), MAX_BACKOFF)
                logger.warning("%s: %s; retry %d of %d in %.1f s", url, err, failures,
                               net.retries, delay)
                time.sleep(delay)
    finally:
        bar.close()


def _transfer(url: str, part: Path, timeout: float,
              report: Callable[[int, int | None], None]) -> None:
    """One request: append the rest of ``url`` to ``part`` (or rewrite it from the start).

    Raises ``_Transient`` for failures worth retrying, ``DownloadError`` for the others.
    """
    offset = _size(part)
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        with err:
            _handle_http_error(url, part, offset, err)
        return  # 416 on a part that already holds the whole file
    except urllib.error.URLError as err:
        # An OSError underneath (refused, reset, DNS, time-out) may clear up; a bad URL or
        # an untrusted certificate won't.
        if isinstance(err.reason, OSError) and not isinstance(err.reason,
                                                              ssl.SSLCertVerificationError):
            raise _Transient(f"cannot connect: {err.reason}") from err
        raise DownloadError(f"{url}: {err.reason}") from err
    except (ConnectionError, TimeoutError, HTTPException) as err:
        raise _Transient(f"{type(err).__name__}: {err}") from err

    with response:
        status = getattr(response, "status", None)
        total: int | None = None
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Transient(f"asked for bytes from {offset}, got a range starting at "
                                 f"{start}; starting over")
            mode = "ab"
        else:
            if offset:
                # The server ignored Range and sends the whole file: start the .part afresh.
                logger.info("%s: server ignored the Range request; restarting from 0", url)
            offset, mode = 0, "wb"
        length = _int_or_none(response.headers.get("Content-Length"))
        if total is None and length is not None:
            total = offset + length
        received = 0
        report(offset, total)
        with open(part, mode) as out:
            while True:
                # Only reading is retried: an OSError from writing (a full disk) is not
                # something waiting would fix.
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, HTTPException) as err:
                    raise _Transient(f"transfer broke off after {offset + received} bytes: "
                                     f"{type(err).__name__}: {err}") from err
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                report(offset + received, total)
    if length is not None and received < length:
        raise _Transient(f"connection closed after {offset + received} of {offset + length} bytes")


def _handle_http_error(url: str, part: Path, offset: int, err: urllib.error.HTTPError) -> None:
    """Map an HTTP error status onto: done (return), retry (``_Transient``) or give up."""
    if err.code == 416 and offset:
        _, total = _parse_content_range(err.headers.get("Content-Range"))
        if total == offset:
            return  # the .part already holds every byte
        part.unlink(missing_ok=True)  # longer than the file: not a prefix of it
        raise _Transient(f"HTTP 416 for a .part of {offset} bytes; starting over")
    if err.code in _TRANSIENT_STATUS:
        raise _Transient(f"HTTP {err.code} {err.reason}")
    raise DownloadError(f"{url}: HTTP {err.code} {err.reason}")


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 10-99/100`` -> ``(10, 100)``; ``bytes */100`` -> ``(None, 100)``."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not match:
        return None, None
    start, _, total = match.groups()
    return _int_or_none(start), _int_or_none(total)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# ======================================================================== command line
def add_download_parser(data_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``imn data download`` on the subparsers of ``imn data``."""
    download = data_subparsers.add_parser(
        "download", help="download PTB-XL from PhysioNet (checksummed, resumable)"
    )
    download.add_argument("dataset", choices=DATASETS)
    download.add_argument("--dest", required=True,
                          help="destination folder; re-run the same command to resume")
    download.add_argument("--sampling-rate", type=int, choices=SUPPORTED_SAMPLING_RATES,
                          help="only this rate's records (default: both)")
    download.add_argument("--mode", default="files", choices=MODES,
                          help="files: per-file tree, parallel (default); zip: the published zip")
    download.add_argument("--base-url", default=DEFAULT_BASE_URL,
                          help="per-file tree (files mode); default: %(default)s")
    download.add_argument("--zip-url", default=DEFAULT_ZIP_URL,
                          help="published zip (zip mode); default: PhysioNet's PTB-XL 1.0.3 zip")
    download.add_argument("--workers", type=int, default=4,
                          help="parallel transfers in files mode")
    download.set_defaults(func=cmd_data_download)
    return download


def cmd_data_download(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    root = download_ptbxl(
        args.dest,
        sampling_rate=args.sampling_rate,
        base_url=args.base_url,
        zip_url=args.zip_url,
        mode=args.mode,
        workers=args.workers,
    )
    print(f"PTB-XL ready in {root} ({time.perf_counter() - started:.0f} s); "
          f"inspect it with `imn data info {root}`")
    return 0


__all__ = [
    "CHECKSUMS_FILE",
    "DEFAULT_BASE_URL",
    "DEFAULT_ZIP_URL",
    "CorruptArchiveError",
    "DownloadError",
    "UnsafeArchiveError",
    "add_download_parser",
    "cmd_data_download",
    "download_ptbxl",
    "fetch",
    "read_checksums",
    "safe_extract",
    "sha256_file",
]
