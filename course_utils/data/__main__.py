"""The data command (notebook 00): list, fetch, verify and mirror the course's data sets.

    python -m course_utils.data list                 what exists, its size, license, presence
    python -m course_utils.data fetch eurosat        make it present (mirror, cache or download)
    python -m course_utils.data fetch all
    python -m course_utils.data verify               check every present data set's checksums
    python -m course_utils.data mirror /media/usb    an instructor's offline copy for a classroom

Errors are printed as one clear message (no traceback) and the exit status is 1 (130 for
Ctrl-C). Downloads and copies go to temporary names first: an interruption keeps nothing half-made.
"""

import argparse
import sys
from pathlib import Path

from course_utils import catalog, data


def cmd_list(args):
    """Print each data set, its size, license and whether it is present."""
    print(f"data root: {data.data_root()}")
    print(f"mirror   : {data.mirror_root() or '(none; set COURSE_DATA_MIRROR)'}\n")
    print(f"{'name':<15} {'status':<27} {'size':>10}  license")
    for row in data.status():
        estimate = "" if row["status"].startswith("present") else "~"  # the download's size
        size = f"{estimate}{row['size_mb']:,.0f} MB" if estimate else f"{row['size_mb']:,.1f} MB"
        print(f"{row['name']:<15} {row['status']:<27} {size:>10}  {row['license']}")
    return 0


def _names(names):
    if names in ([], ["all"]):
        return list(catalog.DATASETS)
    for name in names:
        catalog.get(name)  # a clear KeyError for a typo, before any work
    return names


def cmd_fetch(args):
    """Make data sets present; report every failure, exit 1 if any."""
    failed = 0
    for name in _names(args.names):
        try:
            print(f"{name}: ready at {data.fetch(name)}")
        except data.DataUnavailable as err:
            print(f"{name}: FAILED\n{err}\n", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_verify(args):
    """Check present data sets against their checksums; name every bad file, exit 1 if any."""
    names = [n for n in _names(args.names) if args.names or data.is_present(n)]
    if not names:
        print(f"no data set is present in {data.data_root()}")
    failed = 0
    for name in names:
        try:
            bad = data.verify(name)
        except data.DataUnavailable as err:
            print(f"{name}: {err}", file=sys.stderr)
            failed += 1
            continue
        if data.expected_sums(name) is None:
            print(f"{name}: present, but has no checksum list to check it against (placed by hand)")
            continue
        for path in bad:
            real = f" (-> {path.resolve()})" if path.resolve() != path else ""
            print(f"{name}: BAD {path}{real}", file=sys.stderr)
        if not bad:
            print(f"{name}: ok")
        failed += bool(bad)
    return 1 if failed else 0


def cmd_mirror(args):
    """Copy the present data sets (checked) into a folder that can serve as COURSE_DATA_MIRROR."""
    done = data.export_mirror(args.dest, _names(args.names) if args.names else None)
    print(f"mirrored {', '.join(done) or 'nothing (no data set is present)'} into {args.dest}")
    print(f"use it with: COURSE_DATA_MIRROR={Path(args.dest).resolve()}")
    return 0


def main(argv=None):
    """Run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="each data set, its size, license and whether it is present")
    fetch = sub.add_parser("fetch", help="make data sets present: NAME ... or all")
    fetch.add_argument("names", nargs="+", metavar="NAME")
    verify = sub.add_parser("verify", help="check present data sets against their checksums")
    verify.add_argument("names", nargs="*", metavar="NAME")
    mirror = sub.add_parser("mirror", help="copy present data sets into DEST for a classroom")
    mirror.add_argument("dest")
    mirror.add_argument("names", nargs="*", metavar="NAME")
    args = parser.parse_args(argv)
    command = {"list": cmd_list, "fetch": cmd_fetch, "verify": cmd_verify, "mirror": cmd_mirror}
    try:
        return command[args.command](args)
    except (data.DataUnavailable, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) else err
        print(f"error: {message}", file=sys.stderr)
        return 1
    except OSError as err:  # the disk, not the data: full, read-only, gone
        where = f" ({err.filename})" if err.filename else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing half-made was kept (partial downloads and copies are "
              "removed)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
