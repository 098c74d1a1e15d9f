"""Run a peer client as a child process and report what it cost, for `bench` (tests/src/bench/peers.rs).

    measure.py [--airbyte-records] -- COMMAND ARGS...

Prints one JSON line: wall seconds, the child's CPU seconds (user + system) and peak RSS (KiB),
from the kernel's accounting of the waited-for child (getrusage(RUSAGE_CHILDREN)), and either the
number of Airbyte RECORD messages the child printed (--airbyte-records) or the child's own last
JSON line ("result"). The child's stderr passes through.
"""

import json
import resource
import subprocess
import sys
import time


def main() -> int:
    args = sys.argv[1:]
    airbyte = False
    if args and args[0] == "--airbyte-records":
        airbyte, args = True, args[1:]
    if args and args[0] == "--":
        args = args[1:]
    started = time.monotonic()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    records, last = 0, None
    assert child.stdout is not None
    for line in child.stdout:
        if airbyte:
            # Airbyte protocol: one JSON message a line; records are {"type": "RECORD", ...}.
            if line.startswith('{"type":"RECORD"') or '"type": "RECORD"' in line[:40]:
                records += 1
        elif line.strip():
            last = line
    code = child.wait()
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {
        "exit_code": code,
        "secs": wall,
        "cpu_secs": usage.ru_utime + usage.ru_stime,
        "peak_rss_kib": usage.ru_maxrss,
    }
    if airbyte:
        out["items"] = records
    else:
        try:
            out["result"] = json.loads(last) if last else None
        except ValueError:
            out["result"] = None
        if isinstance(out["result"], dict):
            out["items"] = out["result"].get("items")
    print(json.dumps(out), flush=True)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
