"""Make a data set present: already in the data root, linked from a mirror, or downloaded (00).

Order of preference in :func:`fetch`:

1. the data root (``COURSE_DATA_DIR``, default ``data/``) already has it;
2. a mirror (``COURSE_DATA_MIRROR``, e.g. ``../shared/datasets``) has it: its files are checked
   against the mirror's ``SHA256SUMS`` once, then linked (copied where links are not allowed);
   the mirror itself is never written to;
3. download (progress bar; a connection that stalls fails after ``DOWNLOAD_TIMEOUT_S``), check
   the md5 the standard loader uses (or the shipped sha256 manifest), unpack safely into a
   temporary folder next to the target and rename it into place, so a failure never leaves a
   half folder behind.

When none works, :class:`DataUnavailable` says which data set, where to get it and where to put it.
"""

import gzip
import hashlib
import http.client
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm  # plain text bar: no widget state stored in the notebooks

from course_utils import catalog, files
from course_utils.data.walk import walk
from course_utils.env import REPO_ROOT

MANIFEST_NAME = "SHA256SUMS"
MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
DOWNLOAD_TIMEOUT_S = 60  # per connect and per read; a stalled connection must not hang a notebook
# A server can also trickle (a byte every few seconds: no read ever times out). So a download
# must also keep up STALL_MIN_BYTES_PER_S over every STALL_WINDOW_S, and end within its deadline.
STALL_WINDOW_S, STALL_MIN_BYTES_PER_S = 60, 1024
DOWNLOAD_DEADLINE_S = 3 * 3600  # the largest archive at a slow 100 kB/s takes under an hour
# torchvision's own User-Agent: the servers of its data sets accept it (some refuse urllib's).
USER_AGENT = "pytorch/vision"
CHUNK_BYTES = 1 << 16
_NOT_DATA = {MANIFEST_NAME, "SOURCE.md"}  # files that describe a data set rather than hold it
# Files an operating system drops into any folder it shows (a mirror on a USB stick opened in
# Finder gets .DS_Store). No loader opens them, so they are neither data nor a reason to refuse.
OS_JUNK = {".DS_Store", "Thumbs.db", "desktop.ini"}
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


class DataUnavailable(RuntimeError):
    """A data set is not here and cannot be made present; the message says what to do."""


class ChecksumError(DataUnavailable):
    """A file does not match its checksum: a corrupted or truncated copy."""


class UnsafeArchive(DataUnavailable):
    """An archive member would land outside its folder (path traversal); nothing was kept."""


# ----- where data lives ----------------------------------------------------------------------

def _env_path(variable, default):
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    path = Path(value).expanduser()
    # Relative to the repository, not the working directory: notebooks run from notebooks/.
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


def data_root():
    """The data root: ``COURSE_DATA_DIR`` or ``data/`` in the repository (git-ignored)."""
    return _env_path("COURSE_DATA_DIR", REPO_ROOT / "data")


def mirror_root():
    """The read-only mirror folder ``COURSE_DATA_MIRROR``, or None when it is unset."""
    return _env_path("COURSE_DATA_MIRROR", None)


def _paths(entry, folder):
    """The paths that make up a data set inside `folder`: the folder, or its member files."""
    return [folder / m for m in entry.members] if entry.members else [folder]


def is_present(name):
    """True when the data set is in the data root (cheap: no checksums)."""
    entry = catalog.get(name)
    paths = _paths(entry, data_root() / entry.folder)
    if entry.members:
        return all(p.is_file() for p in paths)
    # An empty folder (say, made by hand) is not a data set.
    return paths[0].is_dir() and any(paths[0].iterdir())


# ----- checksums -----------------------------------------------------------------------------

def _hexdigest(path, digest):
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path):
    """The sha256 of a file, read in chunks."""
    return _hexdigest(path, hashlib.sha256())


def md5_file(path):
    """The md5 of a file: the checksum torchvision's loaders publish for their downloads."""
    return _hexdigest(path, hashlib.md5(usedforsecurity=False))  # an integrity check, not security


def _outside(rel):
    """Why a manifest path would leave its data set, or None: only plain relative paths stay."""
    parts = rel.split("/")
    if rel.startswith("/") or ":" in parts[0]:
        return "an absolute path"
    if "\\" in rel:
        return "a Windows path (with backslashes)"
    if any(part in ("", ".", "..") for part in parts) or "\0" in rel:
        return "a path that is not a plain path inside the data set"
    return None


def read_manifest(path):
    """A ``SHA256SUMS`` file (``sha256sum`` format) as {relative path: sha256}.

    Every line must be a checksum and a plain relative path inside the data set: a list that
    names ``../x`` or ``/etc/x`` is refused as a whole (:class:`ChecksumError`), never opened."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ChecksumError(f"{path} is not a text checksum list (not UTF-8 at byte {err.start}); "
                            "it was not used. Recreate it with `python -m course_utils.data mirror`.") from err
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            raise ChecksumError(f"{path}, line {number}: not '<sha256>  <path>' ({line[:60]!r}); "
                                "the list was not used.")
        rel = match.group(2)
        reason = _outside(rel)
        if reason:
            raise ChecksumError(f"{path}, line {number}: {rel!r} is {reason}, outside its data "
                                "set; the list was not used and nothing it names was opened.")
        sums[rel] = match.group(1).lower()
    return sums


def _data_tree(folder):
    """Every file under `folder`, hidden ones too, reading no link to a folder (see walk.py)."""
    return walk(folder, hidden=True, follow_links=False)


def _is_data(rel):
    return rel.as_posix() not in _NOT_DATA and rel.name not in OS_JUNK


def _data_files(folder, tree=None):
    """Every data file under `folder` as paths relative to it (notes and OS_JUNK left out).

    Other hidden files count: a loader may read them (``._photo.jpg``), so they are checked.
    ``tree``: the folder's walk, when the caller already has it."""
    folder = Path(folder)
    tree = tree or _data_tree(folder)
    return [rel for rel in (p.relative_to(folder) for p in tree.files) if _is_data(rel)]


def write_manifest(folder, sums=None):
    """Write ``folder/SHA256SUMS``: ``sums`` ({rel path: sha256}), or every data file hashed now."""
    folder = Path(folder)
    if sums is None:
        sums = {rel.as_posix(): sha256_file(folder / rel) for rel in _data_files(folder)}
    lines = [f"{digest}  {rel}\n" for rel, digest in sorted(sums.items())]
    return files.write_text(folder / MANIFEST_NAME, "".join(lines))


def check_files(folder, expected, complete=False):
    """Paths under `folder` that are missing or differ from `expected` ({rel path: sha256}).

    With ``complete``, files that `expected` does not list count as bad too, and so does any
    link to a folder: nothing unchecked slips into a data set.
    """
    folder = Path(folder)
    bad = []
    for rel, digest in sorted(expected.items()):
        path = folder / rel
        if not path.is_file() or sha256_file(path) != digest:
            bad.append(path)
    if complete:
        tree = _data_tree(folder)
        bad += [folder / rel for rel in _data_files(folder, tree) if rel.as_posix() not in expected]
        bad += [path for path, _ in tree.links]
    return bad


def _select(entry, sums, where):
    """The manifest lines of this data set (all of them, or its member files)."""
    if not entry.members:
        return sums
    missing = [m for m in entry.members if m not in sums]
    if missing:
        raise ChecksumError(f"{entry.name}: {where} has no checksum for {', '.join(missing)}.")
    return {m: sums[m] for m in entry.members}


def expected_sums(name):
    """The checksums a present copy is checked against, or None when there are none."""
    entry = catalog.get(name)
    own = data_root() / entry.folder / MANIFEST_NAME
    # A mirrored or downloaded folder carries its own list; a MedMNIST file uses the shipped one.
    if not entry.members and own.is_file():
        return read_manifest(own)
    if entry.manifest:
        path = MANIFEST_DIR / entry.manifest
        return _select(entry, read_manifest(path), path)
    return None


def verify(name):
    """Check a present data set against its checksums; returns the bad (or missing) files."""
    entry = catalog.get(name)
    if not is_present(name):
        raise DataUnavailable(f"{name} is not in {data_root()}: nothing to verify "
                              f"(run `python -m course_utils.data fetch {name}`).")
    expected = expected_sums(name)
    if expected is None:
        return []
    return check_files(data_root() / entry.folder, expected, complete=not entry.members)


def fingerprint(name):
    """A short hash of the data set's file names, sizes and modification times (cache keys)."""
    entry = catalog.get(name)
    folder = data_root() / entry.folder
    files = [Path(m) for m in entry.members] or _data_files(folder)
    digest = hashlib.sha256()
    for rel in files:
        stat = (folder / rel).stat()  # follows links: a mirror file's own size and time count
        digest.update(f"{rel.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# ----- messages ------------------------------------------------------------------------------

def _where(entry):
    return (f"  Get it from: {' or '.join(entry.urls) or '(no public source)'}\n"
            f"  and unpack it so that this exists: {data_root() / entry.layout}\n"
            f"  or set COURSE_DATA_MIRROR to a course mirror that has a '{entry.folder}' folder.")


def _missing_message(entry, reason):
    return f"Data set '{entry.name}' is not in {data_root()} and {reason}.\n" + _where(entry)


# ----- from a mirror -------------------------------------------------------------------------

def _mirror_source(entry):
    """The mirror folder that holds this data set, or None."""
    mirror = mirror_root()
    if mirror is None:
        return None
    source = mirror / entry.folder
    if entry.members:
        return source if all((source / m).is_file() for m in entry.members) else None
    return source if source.is_dir() else None


def _stat_listing(entry, source, expected):
    """The name, size and modification time of every file a check covers, as one hash.

    A verified mirror is hashed again only when this changes: a file edited, replaced, added
    or removed after its check changes it, so what is used is always what was checked."""
    if entry.members:
        paths = [source / rel for rel in sorted(expected)]
    else:
        tree = _data_tree(source)
        paths = tree.files + [path for path, _ in tree.links]
    digest = hashlib.sha256()
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}\n".encode())
        except OSError:  # a broken link or a missing member: the check itself will say which
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def _verify_mirror(entry, source):
    """Check the mirror's files against its manifest; again only when a file has changed since."""
    manifest = source / MANIFEST_NAME
    if not manifest.is_file():
        raise DataUnavailable(f"{entry.name}: the mirror folder {source} has no {MANIFEST_NAME}, so "
                              "its files cannot be checked. Recreate the mirror with "
                              "`python -m course_utils.data mirror DEST`.")
    expected = _select(entry, read_manifest(manifest), manifest)
    if not expected:
        raise ChecksumError(f"{entry.name}: {manifest} lists no files, so nothing can be checked.")
    sums = "".join(f"{d}  {r}\n" for r, d in sorted(expected.items()))
    key = hashlib.sha256(f"{source.resolve()}\n{sums}".encode()).hexdigest()[:16]
    marker = data_root() / ".verified" / f"{entry.name}-{key}"
    listing = _stat_listing(entry, source, expected)  # before hashing: a change during it counts
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == listing:
        return expected
    bad = check_files(source, expected, complete=not entry.members)
    if bad:
        raise ChecksumError(f"{entry.name}: {len(bad)} file(s) in the mirror are missing from, or "
                            f"do not match, its {MANIFEST_NAME}; first: {bad[0]}. The mirror was not used (and not "
                            "changed): ask whoever prepared it to copy that file again, or unset "
                            "COURSE_DATA_MIRROR to download.")
    marker.parent.mkdir(parents=True, exist_ok=True)
    files.write_text(marker, listing + "\n")
    return expected


def _link(source, target):
    """Symlink target -> source; False where the platform refuses (Windows without rights)."""
    try:
        os.symlink(source, target, target_is_directory=source.is_dir())
    except FileExistsError:
        pass  # another process linked it first
    except OSError:
        return False
    return True


def copy_tree(source, target, rels=None):
    """Copy a data set's files (``rels``: only these) and notes, not the read-only permissions."""
    source, target = Path(source), Path(target)
    extra = [Path(n) for n in sorted(_NOT_DATA) if (source / n).is_file()]
    rels = _data_files(source) if rels is None else [Path(r) for r in sorted(rels)]
    for rel in rels + extra:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, target / rel)


def _copy_checked(entry, source, target, expected):
    """Copy from the mirror into a temporary name, check the copy, then rename it into place."""
    partial = Path(tempfile.mkdtemp(prefix=f".partial-{entry.folder}-", dir=data_root()))
    try:
        copy = partial / source.name
        if source.is_dir():
            copy_tree(source, copy, expected)  # what the list names, nothing else
            bad = check_files(copy, expected, complete=True)
        else:
            shutil.copyfile(source, copy)
            bad = [] if sha256_file(copy) == expected[source.name] else [copy]
        if bad:
            raise ChecksumError(f"{entry.name}: the copy of {bad[0].name} from the mirror does "
                                "not match its checksum; nothing was kept.")
        os.replace(copy, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _from_mirror(entry, source):
    """Link (or copy) a verified data set from the mirror into the data root."""
    expected = _verify_mirror(entry, source)
    folder = data_root() / entry.folder
    if entry.members:
        folder.mkdir(parents=True, exist_ok=True)
        pairs = [(source / m, folder / m) for m in entry.members]
    else:
        pairs = [(source, folder)]
    for src, target in pairs:
        if not _link(src.resolve(), target):
            wanted = expected if src.is_dir() else {src.name: expected[src.name]}
            _copy_checked(entry, src, target, wanted)


def _recheck_link(entry):
    """A linked copy: hash the mirror again if any of its files changed since it was checked.

    A mirror that fails is unlinked, so the next fetch starts afresh (another mirror, or a
    download), instead of failing on the same link for ever."""
    folder = data_root() / entry.folder
    links = [path for path in _paths(entry, folder) if path.is_symlink()]
    if not links:
        return
    source = links[0].resolve() if not entry.members else links[0].resolve().parent
    try:
        _verify_mirror(entry, source)
    except ChecksumError:
        for path in links:
            path.unlink()
        raise


# ----- download ------------------------------------------------------------------------------

class DownloadTooSlow(DataUnavailable):
    """A download that trickled below the minimum rate, or ran past its deadline."""


def _stream(url, path):
    """Download ``url`` into ``path`` in chunks, with a progress bar on stderr.

    Three limits, so that no server can hold a learner's notebook: each connect and read
    (``DOWNLOAD_TIMEOUT_S``), the rate over each ``STALL_WINDOW_S``, the whole download
    (``DOWNLOAD_DEADLINE_S``)."""
    # The timeout belongs to this request's socket (connect and every read). Not
    # socket.setdefaulttimeout: that would change every socket of the process, other threads' too.
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    start = window_start = time.monotonic()
    received = window_bytes = 0
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, \
            open(path, "wb") as f:
        size = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr, mininterval=2) as bar:
            # read1: what has arrived, at most CHUNK_BYTES. read() would wait for a full chunk,
            # and a trickling server would keep it waiting without any single read timing out.
            for chunk in iter(lambda: response.read1(CHUNK_BYTES), b""):
                f.write(chunk)
                bar.update(len(chunk))
                received += len(chunk)
                window_bytes += len(chunk)
                now = time.monotonic()
                if now - start > DOWNLOAD_DEADLINE_S:
                    raise DownloadTooSlow(f"the download of {url} passed its deadline of "
                                          f"{DOWNLOAD_DEADLINE_S:g} s with {_of(received, size)}")
                if now - window_start >= STALL_WINDOW_S:
                    if window_bytes < STALL_MIN_BYTES_PER_S * (now - window_start):
                        raise DownloadTooSlow(
                            f"the download of {url} stalled: {window_bytes} bytes in the last "
                            f"{now - window_start:.0f} s, below {STALL_MIN_BYTES_PER_S} bytes/s "
                            f"({_of(received, size)})")
                    window_start, window_bytes = now, 0


def _of(received, size):
    return f"{received:,} of {size:,} bytes received" if size else f"{received:,} bytes received"


def _stream_or_explain(entry, url, part):
    """:func:`_stream`, its failures said in words: what happened, and what to do."""
    try:
        _stream(url, part)
    except http.client.HTTPException as err:  # the connection dropped mid-file
        raise ChecksumError(f"{entry.name}: the download of {url} was cut off ({err!r}).") from err
    except DownloadTooSlow as err:
        raise DownloadTooSlow(_missing_message(entry, f"{err}; nothing was kept")) from err
    except (urllib.error.URLError, OSError) as err:
        raise DataUnavailable(_missing_message(entry, f"downloading it failed ({err})")) from err


def _download_file(entry, archive, downloads):
    """Download one file into ``downloads`` and check its md5; returns the path."""
    final = downloads / archive.filename
    if final.is_file() and (archive.md5 is None or md5_file(final) == archive.md5):
        return final  # only checked, complete downloads ever get the final name
    part = downloads / f"{archive.filename}.part"
    part.unlink(missing_ok=True)  # a leftover of an interrupted run is never reused
    print(f"Downloading {entry.name}: {archive.url}", file=sys.stderr)
    try:
        _stream_or_explain(entry, archive.url, part)
    except BaseException:  # Ctrl-C too: only a complete, checked download keeps a file
        part.unlink(missing_ok=True)
        raise
    if archive.md5 is not None:
        got = md5_file(part)
        if got != archive.md5:
            part.unlink()
            raise ChecksumError(f"{entry.name}: {archive.filename} from {archive.url} has md5 "
                                f"{got}, expected {archive.md5} (a corrupted or truncated download).")
    os.replace(part, final)
    return final


def _check_member(name, dest, archive):
    """Refuse an absolute name, a drive, '..', or anything that resolves outside `dest`."""
    parts = name.replace("\\", "/").split("/")
    inside = (dest / name).resolve().is_relative_to(dest.resolve())
    if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0] or not inside:
        raise UnsafeArchive(f"{Path(archive).name}: member {name!r} would be written outside "
                            f"{dest}; nothing was extracted.")


def extract_safely(archive, dest):
    """Unpack a zip or tar(.gz) into `dest`, refusing any member that would land outside it."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():  # check all first: refuse before writing anything
                    _check_member(info.filename, dest, archive)
                zf.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():  # refuse, where the filter would only rewrite
                    _check_member(member.name, dest, archive)
                # The "data" filter also refuses links that leave dest, and device files.
                tf.extractall(dest, filter="data")
        else:
            raise ChecksumError(f"{archive.name} is neither a zip nor a tar archive "
                                "(a truncated or corrupted download?).")
    except tarfile.FilterError as err:
        raise UnsafeArchive(f"{archive.name}: {err}; refusing to extract it.") from err
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ChecksumError(f"{archive.name} cannot be unpacked ({err}): a truncated or "
                            "corrupted download.") from err


def _install(entry, top):
    """Move a checked, unpacked data set from its temporary folder to its final name."""
    folder = data_root() / entry.folder
    if entry.members:
        folder.mkdir(parents=True, exist_ok=True)
        for member in entry.members:
            os.replace(top / member, folder / member)
        return
    write_manifest(top)  # so `verify` can check it later, and it can serve as a mirror
    try:
        os.rename(top, folder)
    except OSError:
        if not is_present(entry.name):  # lost a race to another process: theirs is as good
            raise


def _download_once(entry):
    root = data_root()
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".partial-{entry.folder}-", dir=root))
    try:
        for archive in entry.archives:
            path = _download_file(entry, archive, downloads)
            dest = partial / archive.into
            if archive.extract:
                extract_safely(path, dest)
            else:
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest / archive.filename)
        top = partial / entry.archive_root
        if not top.is_dir():
            raise ChecksumError(f"{entry.name}: the download does not contain "
                                f"'{entry.archive_root}/' (not the expected archive).")
        if entry.manifest:  # no md5 published upstream: every file is pinned instead
            path = MANIFEST_DIR / entry.manifest
            bad = check_files(top, _select(entry, read_manifest(path), path))
            if bad:
                raise ChecksumError(f"{entry.name}: {bad[0].relative_to(top)} does not match the "
                                    f"pinned sha256 in {path.name} ({len(bad)} bad file(s)).")
        _install(entry, top)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    for archive in entry.archives:  # the unpacked copy is what we keep; halve the disk use
        (downloads / archive.filename).unlink(missing_ok=True)


def _download(entry):
    """Download, check and unpack; on a checksum failure start over once, then give up."""
    try:
        _download_once(entry)
    except UnsafeArchive:
        _forget_downloads(entry)  # a malicious archive does not become safe on a second try
        raise
    except ChecksumError as err:
        print(f"{err}\nRetrying the download once.", file=sys.stderr)
        _forget_downloads(entry)
        try:
            _download_once(entry)
        except ChecksumError as again:
            _forget_downloads(entry)
            raise ChecksumError(f"{again}\nThe download failed its check twice, so nothing was "
                                "kept. Try again later, or download it by hand:\n"
                                + _where(entry)) from again


def _forget_downloads(entry):
    for archive in entry.archives:
        for name in (archive.filename, f"{archive.filename}.part"):
            (data_root() / "downloads" / name).unlink(missing_ok=True)


# ----- the one entry point -------------------------------------------------------------------

def _make_root():
    """Create the data root, or say in one sentence why it cannot be used."""
    root = data_root()
    if root.exists() and not root.is_dir():
        raise DataUnavailable(f"the data root {root} is a file, not a folder: set COURSE_DATA_DIR "
                              "to a folder (or remove the file)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        files.check_writable(root)
    except OSError as err:
        raise DataUnavailable(f"cannot write into the data root {root} ({err.strerror or err}): "
                              "set COURSE_DATA_DIR to a folder you can write to") from err


def fetch(name):
    """Make a data set present in the data root (cache, mirror or download); returns its folder."""
    entry = catalog.get(name)
    folder = data_root() / entry.folder
    if is_present(name):
        _recheck_link(entry)
        return folder
    _make_root()
    try:
        _make_present(entry, folder)
    except OSError as err:  # the disk, not the data: say which file and why, in one sentence
        where = f" ({err.filename})" if err.filename else ""
        raise DataUnavailable(f"{name}: could not be made present in {data_root()}: "
                              f"{err.strerror or err}{where}; nothing half-made was kept") from err
    return folder


def _make_present(entry, folder):
    for path in _paths(entry, folder):
        if path.is_symlink():  # points at a mirror that moved away
            path.unlink()
    source = _mirror_source(entry)
    if source is not None:
        _from_mirror(entry, source)
    elif entry.archives:
        _download(entry)
    else:
        raise DataUnavailable(_missing_message(
            entry, "it has no public direct download: get it by hand from the authors' page"))


def export_mirror(dest, names=None):
    """Copy present, verified data sets into `dest` with a SHA256SUMS each: a classroom mirror.

    Each data set is copied into a temporary folder in `dest`, the copy checked against the
    checksums the data set was verified with, and only then renamed into place; a folder of an
    earlier mirror is replaced whole. The SHA256SUMS lists what was checked, never files that
    happened to be in `dest` already."""
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise DataUnavailable(f"{dest} is a file: the mirror needs a folder")
    done = []
    for name in names or list(catalog.DATASETS):
        if not is_present(name):
            continue
        entry = catalog.get(name)
        source, target = data_root() / entry.folder, dest / entry.folder
        _refuse_overlap(name, entry, source, target)
        bad = verify(name)
        if bad:
            raise ChecksumError(f"{name}: {bad[0]} does not match its checksum; not exported.")
        # Checked sums; a set placed by hand has none, and its files as they are now become its list.
        sums = expected_sums(name) or {rel.as_posix(): sha256_file(source / rel)
                                       for rel in _data_files(source)}
        dest.mkdir(parents=True, exist_ok=True)
        if entry.members:
            _export_members(entry, source, target, sums)
        else:
            _export_folder(entry, source, target, sums)
        done.append(name)
    return done


def _refuse_overlap(name, entry, source, target):
    """Refuse to export onto the data set's own files (a data root that links into `dest`)."""
    pairs = [(source / m, target / m) for m in entry.members] or [(source, target)]
    for src, dst in pairs:
        real_src, real_dst = Path(os.path.realpath(src)), Path(os.path.realpath(dst))
        if real_dst.is_relative_to(real_src) or real_src.is_relative_to(real_dst):
            raise DataUnavailable(f"{name}: {dst} is where the data set is read from "
                                  f"({real_src}); a mirror must be another folder")


def _export_folder(entry, source, target, sums):
    if target.exists() and not (target / MANIFEST_NAME).is_file():
        raise DataUnavailable(f"{entry.name}: {target} already exists and is not a course mirror "
                              f"(it has no {MANIFEST_NAME}); choose an empty folder, or remove it")
    partial = Path(tempfile.mkdtemp(prefix=f".partial-{entry.folder}-", dir=target.parent))
    try:
        copy = partial / entry.folder
        copy_tree(source, copy, sums)
        bad = check_files(copy, sums, complete=True)
        if bad:
            raise ChecksumError(f"{entry.name}: the copy of {bad[0].relative_to(copy)} does not "
                                "match its checksum; the mirror was not changed.")
        write_manifest(copy, sums)
        if target.exists():  # an earlier mirror of this data set: swap, then remove it
            os.replace(target, partial / "old")
        os.replace(copy, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _export_members(entry, source, target, sums):
    """Member files (MedMNIST's .npz) share one folder with other data sets' members."""
    target.mkdir(parents=True, exist_ok=True)
    for member in entry.members:
        def copy(tmp, member=member):
            shutil.copyfile(source / member, tmp)
            if sha256_file(tmp) != sums[member]:
                raise ChecksumError(f"{entry.name}: the copy of {member} does not match its "
                                    "checksum; the mirror was not changed.")
        files.write_atomic(target / member, copy)
    # Keep the lines of the other data sets' members (written, checked, by an earlier export).
    kept = read_manifest(target / MANIFEST_NAME) if (target / MANIFEST_NAME).is_file() else {}
    kept.update({m: sums[m] for m in entry.members})
    write_manifest(target, kept)
