"""Run the moto AWS emulator on a loopback port and die with the process that started us.

Prints `READY <port>` on stdout once the server accepts connections, then waits for its stdin
to close. The test harness (or `make local`) holds the write end of that pipe, so when it exits
for any reason, crash included, the pipe closes and the emulator stops: no orphan servers.

moto's backends keep no locks, so two concurrent conditional writes (DynamoDB
`ConditionExpression`) can both pass their check: real DynamoDB makes each one atomic, and our
lease and version checks rely on that. Requests are therefore handled one at a time inside
moto (connections still get a thread each). moto is bound by Python's GIL anyway, so this
costs little throughput and makes the emulator honour DynamoDB's guarantee.
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class SerialisedApp:
    """A WSGI app that lets one request at a time into moto."""

    def __init__(self, app):
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            # Materialise the body inside the lock: moto may compute it lazily.
            return list(self._app(environ, start_response))


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    app = SerialisedApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
