"""Run the moto AWS emulator on a loopback port and die with the process that started us.

Prints `READY <port>` on stdout once the server accepts connections, then waits for its stdin
to close. The test harness (or `make local`) holds the write end of that pipe, so when it exits
for any reason, crash included, the pipe closes and the emulator stops: no orphan servers.
"""

import os
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"READY {server._server.port}", flush=True)  # noqa: SLF001 (moto keeps the bound server here)
    try:
        sys.stdin.read()
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
