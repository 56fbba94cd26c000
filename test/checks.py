"""What the Python test scripts (plots-test.py, reproduce-test.py) share: named checks that
print ok/FAIL and are counted, the PNG header check, and the CHECK-dispatching main."""

import os
import struct
import sys
import tempfile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

failures = []


def check(what, condition):
    print(("ok: " if condition else "FAIL: ") + what)
    if not condition:
        failures.append(what)


def png_size(path):
    """(width, height) from a PNG's IHDR, or None when the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def main(checks, usage, path_args):
    """argv: CHECK then path_args paths; runs checks[CHECK](*paths, tmp) in a temporary folder.
    Exit status 2 on bad arguments, 1 when any check failed."""
    if len(sys.argv) != 2 + path_args or sys.argv[1] not in checks:
        print(usage, file=sys.stderr)
        return 2
    paths = [os.path.abspath(p) for p in sys.argv[2:]]
    with tempfile.TemporaryDirectory() as tmp:
        checks[sys.argv[1]](*paths, tmp)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    return 0
