"""Runs airbyte-source-jira 4.0.0's `read` in this process, for `bench` (tests/src/bench/peers.rs).

    airbyte_read.py read --config CONFIG --catalog CATALOG

The same entry point as the package's `source-jira` command (source_jira.run), with one change:
the manifest's `url_base` scheme https becomes http, because the bench's sites listen on plain
HTTP on loopback (our export talks plain HTTP to them too, so neither side pays for TLS).
Everything else - requests, paging, retries, record transformations - is Airbyte's own.
"""

import sys

from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource

_read_manifest = YamlDeclarativeSource._read_and_parse_yaml_file


def _plain_http(self, path_to_yaml_file):
    manifest = _read_manifest(self, path_to_yaml_file)
    requesters = manifest.get("definitions", {})
    for name in ("requester", "requester_v1"):
        base = requesters.get(name, {}).get("url_base")
        if isinstance(base, str) and base.startswith("https://"):
            requesters[name]["url_base"] = "http://" + base[len("https://"):]
    return manifest


YamlDeclarativeSource._read_and_parse_yaml_file = _plain_http

from source_jira.run import run  # noqa: E402  (after the patch above)

if __name__ == "__main__":
    run()
    sys.exit(0)
