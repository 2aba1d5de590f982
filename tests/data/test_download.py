"""End-to-end tests of the PTB-XL downloader against a loopback HTTP server.

The server (``ThreadingHTTPServer`` on 127.0.0.1, a random port) serves a tree written here
under ``tmp_path``: five synthetic records in PhysioNet's PTB-XL layout at both rates
(:func:`imn.data.synthetic.write_synthetic`), the two CSVs and a licence, with a
``SHA256SUMS.txt`` built here. No real PTB-XL is needed, so these tests always run. Its handler implements ``Range`` requests and
can misbehave on purpose, per file: serve wrong bytes (once or always), cut the body off
halfway through the first time, ignore ``Range``, or answer 503 once. Every request is
logged, so the tests can check what the downloader actually asked for.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import stat
import threading
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from imn.data.download import (
    CHECKSUMS_FILE,
    CorruptArchiveError,
    DownloadError,
    UnsafeArchiveError,
    add_download_parser,
    download_ptbxl,
    fetch,
    read_checksums,
    safe_extract,
)
from imn.data.ptbxl import load_ptbxl
from imn.data.synthetic import make_synthetic, write_synthetic

ECG_IDS = (1, 2, 3, 4, 5)
TOP_LEVEL = ("LICENSE.txt", "scp_statements.csv", "ptbxl_database.csv")
ZIP_NAME = "ptb-xl-1.0.3.zip"
ZIP_FOLDER = "ptb-xl-1.0.3"
# Quick retries: the faults below are one-offs, so no test waits on real back-off.
FAST = {"progress": False, "backoff": 0.01, "timeout": 10.0}
BIG_FILE = "records500/00000/00003_hr.dat"  # 120 kB: large enough to cut in half


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _corrupt(data: bytes) -> bytes:
    """Same length, every byte wrong: only a checksum (or the zip reader) can tell."""
    return bytes(b ^ 0xFF for b in data)


# ======================================================================== served data
@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Path:
    """Five synthetic records in PhysioNet's PTB-XL layout at both rates, with their
    SHA256SUMS.txt."""
    copy = tmp_path_factory.mktemp("served")
    for rate in (100, 500):
        write_synthetic(make_synthetic(len(ECG_IDS), rate, seed=3), copy)
    (copy / "LICENSE.txt").write_text("test licence\n")
    files = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    (copy / CHECKSUMS_FILE).write_text(
        "".join(f"{_sha256((copy / rel).read_bytes())} {rel}\n" for rel in files)
    )
    return copy


@pytest.fixture(scope="module")
def served_files(served) -> list[str]:
    """Every file SHA256SUMS.txt lists (relative paths)."""
    return sorted(read_checksums(served / CHECKSUMS_FILE))


def _zip_of(root: Path, out: Path, extra: dict[zipfile.ZipInfo | str, bytes] | None = None) -> Path:
    """A zip of ``root`` under one top folder, as PhysioNet publishes it."""
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, f"{ZIP_FOLDER}/{path.relative_to(root).as_posix()}")
        for info, data in (extra or {}).items():
            archive.writestr(info, data)
    return out


# ======================================================================== the server
class _State:
    """What the server serves, which faults it injects, and which requests it saw."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.extra: dict[str, Path] = {}  # URL path -> file outside root (zips)
        self.corrupt_once: set[str] = set()
        self.corrupt_always: set[str] = set()
        self.cut_once: set[str] = set()
        self.ignore_range: set[str] = set()
        self.fail_once: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.count: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.url = ""

    def requested(self, path: str) -> list[str | None]:
        """The Range headers of the requests for ``path`` (None: no Range), in order."""
        return [rng for p, rng in self.requests if p == path]


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        state: _State = self.server.state  # type: ignore[attr-defined]
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        header = self.headers.get("Range")
        with state.lock:
            state.requests.append((rel, header))
            nth = state.count[rel]
            state.count[rel] += 1
        file = state.extra.get(rel) or state.root / rel
        if ".." in rel.split("/") or not file.is_file():
            self.send_error(404)
            return
        if state.fail_once.get(rel) and nth == 0:
            self.send_error(state.fail_once[rel])
            return
        data = file.read_bytes()
        if rel in state.corrupt_always or (rel in state.corrupt_once and nth == 0):
            data = _corrupt(data)
        start = 0
        if header and rel not in state.ignore_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if rel in state.cut_once and nth == 0:
            # Promise the whole body, send half, hang up (HTTP/1.0 closes after the handler).
            self.wfile.write(body[: len(body) // 2])
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server(served):
    state = _State(served)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = state  # type: ignore[attr-defined]
    # A short poll interval: shutdown() waits up to one interval, once per test.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMN_CACHE_DIR", str(tmp_path / "cache"))


def _same_tree(got: Path, expected: Path, files: list[str]) -> None:
    for rel in files:
        assert (got / rel).read_bytes() == (expected / rel).read_bytes(), rel


def _no_part_files(folder: Path) -> None:
    assert not list(folder.rglob("*.part"))


# ======================================================================== per-file mode
def test_files_mode_downloads_everything_and_loads_like_the_original(
        server, served, served_files, tmp_path):
    """(f) every listed file arrives verified; load_ptbxl reads the same signals as the served tree."""
    dest = tmp_path / "ptb-xl"
    root = download_ptbxl(dest, base_url=server.url, workers=3, **FAST)
    assert root == dest
    _same_tree(root, served, served_files)
    _no_part_files(dest)
    for rate in (100, 500):
        got = load_ptbxl(root, task="superdiagnostic", sampling_rate=rate, ecg_ids=list(ECG_IDS),
                         use_cache=False)
        want = load_ptbxl(served, task="superdiagnostic", sampling_rate=rate,
                          ecg_ids=list(ECG_IDS), use_cache=False)
        assert len(got) == len(want) > 0
        np.testing.assert_array_equal(got.ecg_ids, want.ecg_ids)
        np.testing.assert_array_equal(got.signals, want.signals)
        np.testing.assert_array_equal(got.labels, want.labels)
        assert got.classes == want.classes


def test_rerun_makes_no_requests(server, tmp_path):
    """(g) a second run over a complete folder re-hashes locally and sends no request at all."""
    dest = tmp_path / "ptb-xl"
    download_ptbxl(dest, base_url=server.url, **FAST)
    assert server.requests
    server.requests.clear()
    assert download_ptbxl(dest, base_url=server.url, **FAST) == dest
    assert server.requests == []


def test_rerun_fetches_only_missing_or_damaged_files(server, served, tmp_path):
    """A resumed run downloads just the files that are missing or fail their checksum."""
    dest = tmp_path / "ptb-xl"
    download_ptbxl(dest, base_url=server.url, **FAST)
    (dest / "records100/00000/00002_lr.dat").unlink()
    (dest / "records100/00000/00004_lr.hea").write_text("damaged")
    server.requests.clear()
    download_ptbxl(dest, base_url=server.url, **FAST)
    assert sorted(p for p, _ in server.requests) == [
        "records100/00000/00002_lr.dat", "records100/00000/00004_lr.hea"]
    _same_tree(dest, served, ["records100/00000/00002_lr.dat", "records100/00000/00004_lr.hea"])


def test_sampling_rate_100_fetches_no_records500(server, served, served_files, tmp_path):
    """(h) --sampling-rate 100: records100/ and the top-level files, nothing of records500/."""
    dest = tmp_path / "ptb-xl"
    download_ptbxl(dest, sampling_rate=100, base_url=server.url, **FAST)
    assert not any(p.startswith("records500/") for p, _ in server.requests)
    assert not (dest / "records500").exists()
    wanted = [rel for rel in served_files if not rel.startswith("records500/")]
    _same_tree(dest, served, wanted)
    assert all((dest / name).is_file() for name in TOP_LEVEL)
    dataset = load_ptbxl(dest, task="superdiagnostic", sampling_rate=100,
                         ecg_ids=list(ECG_IDS), use_cache=False)
    assert dataset.signals.shape[1:] == (1000, 12)


def test_file_corrupted_once_is_downloaded_again(server, served, tmp_path):
    """(a) wrong bytes the first time: the checksum catches them and a second GET fixes it."""
    rel = "records100/00000/00002_lr.dat"
    server.corrupt_once.add(rel)
    dest = tmp_path / "ptb-xl"
    download_ptbxl(dest, base_url=server.url, **FAST)
    assert server.count[rel] == 2
    assert (dest / rel).read_bytes() == (served / rel).read_bytes()
    _no_part_files(dest)


def test_persistently_corrupted_file_names_it_and_both_hashes(server, served, tmp_path):
    """(b) wrong bytes every time: two tries, then an error naming the file and both hashes."""
    rel = "records500/00000/00001_hr.hea"
    server.corrupt_always.add(rel)
    dest = tmp_path / "ptb-xl"
    with pytest.raises(DownloadError) as caught:
        download_ptbxl(dest, base_url=server.url, **FAST)
    message = str(caught.value)
    good = (served / rel).read_bytes()
    assert rel in message
    assert _sha256(good) in message and _sha256(_corrupt(good)) in message
    assert server.count[rel] == 2
    assert not (dest / rel).exists() and not (dest / (rel + ".part")).exists()


def test_interrupted_transfer_resumes_with_range(server, served, tmp_path):
    """(c) the body is cut off halfway: the retry asks for the rest with Range and completes."""
    server.cut_once.add(BIG_FILE)
    dest = tmp_path / "ptb-xl"
    download_ptbxl(dest, base_url=server.url, **FAST)
    size = (served / BIG_FILE).stat().st_size
    assert server.requested(BIG_FILE) == [None, f"bytes={size // 2}-"]
    assert (dest / BIG_FILE).read_bytes() == (served / BIG_FILE).read_bytes()
    _no_part_files(dest)


def test_server_ignoring_range_restarts_cleanly(server, served, tmp_path):
    """A 200 (whole file) in answer to a Range request rewrites the .part from the start."""
    server.cut_once.add(BIG_FILE)
    server.ignore_range.add(BIG_FILE)
    path = tmp_path / "big.dat"
    fetch(server.url + BIG_FILE, path, expected_sha256=_sha256((served / BIG_FILE).read_bytes()),
          backoff=0.01)
    assert len(server.requested(BIG_FILE)) == 2 and server.requested(BIG_FILE)[1] is not None
    assert path.read_bytes() == (served / BIG_FILE).read_bytes()


@pytest.mark.parametrize("already", [1000, "all"])
def test_fetch_resumes_an_existing_part_file(server, served, tmp_path, already):
    """A .part left by an earlier run is continued (or, if whole, just verified and kept)."""
    data = (served / BIG_FILE).read_bytes()
    kept = len(data) if already == "all" else already
    path = tmp_path / "big.dat"
    path.with_name("big.dat.part").write_bytes(data[:kept])
    fetch(server.url + BIG_FILE, path, expected_sha256=_sha256(data), backoff=0.01)
    assert server.requested(BIG_FILE) == [f"bytes={kept}-"]
    assert path.read_bytes() == data
    assert not path.with_name("big.dat.part").exists()


def test_transient_http_error_is_retried(server, served, tmp_path):
    """A 503 is retried after a back-off; the second request succeeds."""
    rel = "scp_statements.csv"
    server.fail_once[rel] = 503
    path = fetch(server.url + rel, tmp_path / rel, backoff=0.01)
    assert server.count[rel] == 2
    assert path.read_bytes() == (served / rel).read_bytes()


def test_missing_file_fails_at_once_naming_the_url(server, tmp_path):
    """A 404 is not retried, and the error names the URL and the status."""
    url = server.url + "records100/00000/99999_lr.dat"
    with pytest.raises(DownloadError, match=r"99999_lr\.dat: HTTP 404"):
        fetch(url, tmp_path / "x.dat", backoff=0.01)
    assert server.count["records100/00000/99999_lr.dat"] == 1
    assert not list(tmp_path.iterdir())


# ======================================================================== zip mode
@pytest.fixture
def zip_server(server, served, tmp_path):
    """The server, also serving a zip of the copy at ``/ZIP_NAME``."""
    server.extra[ZIP_NAME] = _zip_of(served, tmp_path / "served.zip")
    return server


def test_zip_mode_end_to_end(zip_server, served, served_files, tmp_path):
    """(e) the zip is fetched, extracted and verified; a re-run sends no request."""
    dest = tmp_path / "ptb-xl"
    root = download_ptbxl(dest, mode="zip", zip_url=zip_server.url + ZIP_NAME, **FAST)
    assert root == dest / ZIP_FOLDER
    _same_tree(root, served, served_files + [CHECKSUMS_FILE])
    _no_part_files(dest)
    got = load_ptbxl(root, task="superdiagnostic", sampling_rate=500, ecg_ids=list(ECG_IDS),
                     use_cache=False)
    want = load_ptbxl(served, task="superdiagnostic", sampling_rate=500,
                      ecg_ids=list(ECG_IDS), use_cache=False)
    np.testing.assert_array_equal(got.signals, want.signals)

    zip_server.requests.clear()
    assert download_ptbxl(dest, mode="zip", zip_url=zip_server.url + ZIP_NAME, **FAST) == root
    assert zip_server.requests == []


def test_zip_mode_sampling_rate_extracts_one_rate(zip_server, tmp_path):
    root = download_ptbxl(tmp_path / "d", mode="zip", sampling_rate=100,
                          zip_url=zip_server.url + ZIP_NAME, **FAST)
    assert (root / "records100/00000/00001_lr.dat").is_file()
    assert not (root / "records500").exists()


def test_zip_corrupted_once_is_downloaded_again(zip_server, served, served_files, tmp_path):
    """A zip that cannot be read is fetched once more before giving up."""
    zip_server.corrupt_once.add(ZIP_NAME)
    root = download_ptbxl(tmp_path / "d", mode="zip", zip_url=zip_server.url + ZIP_NAME, **FAST)
    assert zip_server.count[ZIP_NAME] == 2
    _same_tree(root, served, served_files)


def test_zip_persistently_corrupt_raises(zip_server, tmp_path):
    zip_server.corrupt_always.add(ZIP_NAME)
    with pytest.raises(CorruptArchiveError, match=ZIP_NAME):
        download_ptbxl(tmp_path / "d", mode="zip", zip_url=zip_server.url + ZIP_NAME, **FAST)
    assert zip_server.count[ZIP_NAME] == 2


def test_zip_with_a_file_failing_its_checksum_names_both_hashes(server, served, tmp_path):
    """A zip whose member differs from SHA256SUMS.txt (a readable zip, wrong content)."""
    rel = "records100/00000/00005_lr.hea"
    bad = tmp_path / "bad"
    shutil.copytree(served, bad)
    good = (bad / rel).read_bytes()
    (bad / rel).write_bytes(b"tampered")
    server.extra[ZIP_NAME] = _zip_of(bad, tmp_path / "bad.zip")
    with pytest.raises(CorruptArchiveError) as caught:
        download_ptbxl(tmp_path / "d", mode="zip", zip_url=server.url + ZIP_NAME, **FAST)
    message = str(caught.value)
    assert rel in message and _sha256(good) in message and _sha256(b"tampered") in message


def test_zip_with_a_parent_member_is_refused(server, served, tmp_path):
    """(d) a ``../evil`` member refuses the whole zip: nothing is extracted, inside or out."""
    server.extra[ZIP_NAME] = _zip_of(served, tmp_path / "evil.zip",
                                     {f"{ZIP_FOLDER}/../../evil": b"pwned"})
    outer = tmp_path / "outer"
    dest = outer / "dest"
    with pytest.raises(UnsafeArchiveError, match=r"\.\./\.\./evil"):
        download_ptbxl(dest, mode="zip", zip_url=server.url + ZIP_NAME, **FAST)
    assert not (outer / "evil").exists() and not (tmp_path / "evil").exists()
    assert sorted(p.name for p in dest.iterdir()) == [ZIP_NAME]  # only the download itself


def _symlink_member(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so external_attr carries st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("member", [
    "../evil",
    "a/../../evil",
    "/tmp/evil-absolute",
    "C:/evil",
    "..\\evil",
    _symlink_member("link", "/etc/passwd"),
], ids=["parent", "nested-parent", "absolute", "drive", "backslash", "symlink"])
def test_safe_extract_refuses_unsafe_members(tmp_path, member):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("ok.txt", b"fine")
        out.writestr(member, b"/etc/passwd" if isinstance(member, zipfile.ZipInfo) else b"x")
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        safe_extract(archive, dest)
    assert list(dest.iterdir()) == []  # checked before anything is written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "deep"]


def test_safe_extract_refuses_to_follow_a_symlink_inside_dest(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "records100").symlink_to(outside)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("records100/x.dat", b"x")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, dest)
    assert list(outside.iterdir()) == []


def test_safe_extract_writes_members_and_filters(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("top/a.txt", b"a")
        out.writestr("top/sub/b.txt", b"b")
    written = safe_extract(archive, tmp_path / "d", members=lambda n: not n.endswith("b.txt"))
    assert written == [(tmp_path / "d/top/a.txt").resolve()]
    assert (tmp_path / "d/top/a.txt").read_bytes() == b"a"
    assert not (tmp_path / "d/top/sub/b.txt").exists()


def test_safe_extract_reports_a_truncated_zip(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        out.writestr("a.txt", b"a" * 1000)
    archive = tmp_path / "cut.zip"
    archive.write_bytes(buffer.getvalue()[:200])
    with pytest.raises(CorruptArchiveError, match="cut.zip"):
        safe_extract(archive, tmp_path / "d")


# ======================================================================== command line
def _parser() -> argparse.ArgumentParser:
    """A stand-in for ``imn data``'s subparsers (built the way imn/cli.py builds them)."""
    parser = argparse.ArgumentParser(prog="imn data")
    add_download_parser(parser.add_subparsers(dest="data_command", required=True))
    return parser


def test_cli_download(server, served, tmp_path, capsys):
    dest = tmp_path / "cli"
    args = _parser().parse_args(["download", "ptb-xl", "--dest", str(dest),
                                 "--sampling-rate", "100", "--base-url", server.url,
                                 "--workers", "2"])
    assert args.func(args) == 0
    assert str(dest) in capsys.readouterr().out
    assert (dest / "records100/00000/00005_lr.dat").read_bytes() == \
        (served / "records100/00000/00005_lr.dat").read_bytes()
    assert not (dest / "records500").exists()


def test_cli_rejects_unknown_dataset_and_rate(tmp_path):
    for argv in (["download", "mitdb", "--dest", str(tmp_path)],
                 ["download", "ptb-xl", "--dest", str(tmp_path), "--sampling-rate", "250"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(argv)


def test_checksum_list_with_unsafe_path_is_refused(server, served, tmp_path):
    """A SHA256SUMS.txt naming ``../x`` would write outside dest: refused before any fetch."""
    tricky = tmp_path / "tricky"
    tricky.mkdir()
    (tricky / CHECKSUMS_FILE).write_text(f"{'0' * 64} ../escape.txt\n")
    server.root = tricky
    with pytest.raises(DownloadError, match="unsafe path"):
        download_ptbxl(tmp_path / "d", base_url=server.url, **FAST)
    assert server.requested("../escape.txt") == [] and not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "d" / CHECKSUMS_FILE).exists()  # refetched next time
