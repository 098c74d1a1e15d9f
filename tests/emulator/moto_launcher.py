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

import inspect
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


def query_reads_one_partition() -> None:
    """Make moto's base-table Query read the key's partition, as DynamoDB does.

    moto 5.2 answers a Query on the base table by sorting every item of the table and keeping
    the partition's (`Table.query` → `Table.all_items()`): O(n log n) per request. With the
    bench's 10,000 connections that was 133 ms of moto CPU per Query, and the refresh bench
    measured moto, not us. Within the wrapped call, `all_items` returns the partition's items
    only, in the same sorted order, so results are unchanged. Index queries are left alone (a
    GSI spans partitions). If moto's internals change shape, moto runs unpatched.
    """
    try:
        from moto.dynamodb.models.table import Table

        signature = inspect.signature(Table.query)
    except (ImportError, AttributeError, ValueError):
        return
    if "index_name" not in signature.parameters or "hash_key" not in signature.parameters:
        return
    original_query, original_all_items = Table.query, Table.all_items
    local = threading.local()

    def all_items(self):
        key = getattr(local, "partition", None)
        if key is None or not self.range_key_attr:
            return original_all_items(self)
        part = self.items[key] if key in self.items else {}
        return sorted(part.values(), key=lambda x: (x.hash_key, x.range_key))

    def query(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        if bound.arguments.get("index_name") or bound.arguments.get("hash_key") is None:
            return original_query(self, *args, **kwargs)
        local.partition = bound.arguments["hash_key"]
        try:
            return original_query(self, *args, **kwargs)
        finally:
            local.partition = None

    Table.all_items = all_items
    Table.query = query


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    query_reads_one_partition()
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
