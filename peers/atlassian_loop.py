"""The plain paging loop with atlassian-python-api 5.0.5 that `bench` compares our export with.

    atlassian_loop.py BASE_URL JQL        (the bearer token comes on stdin)

BASE_URL is the site's API root as an OAuth 2.0 app calls it, https://api.atlassian.com/ex/jira/
{cloudId} in production (here the fake's). Pages through the enhanced search
(GET /rest/api/3/search/jql, Jira.enhanced_jql) with every field and 100 issues a page, as a
script that wants whole issues would, until isLast; stores nothing. Prints one JSON line.
"""

import json
import sys
import time

from atlassian import Jira


def main() -> int:
    base, jql = sys.argv[1], sys.argv[2]
    token = sys.stdin.readline().strip()
    jira = Jira(url=base, token=token, cloud=True)
    started = time.monotonic()
    items, pages, token_next = 0, 0, None
    while True:
        page = jira.enhanced_jql(jql, fields="*all", nextPageToken=token_next, limit=100)
        pages += 1
        items += len(page.get("issues", []))
        token_next = page.get("nextPageToken")
        if page.get("isLast", True) or not token_next:
            break
    print(json.dumps({"items": items, "requests": pages, "secs": time.monotonic() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
