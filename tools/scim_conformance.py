#!/usr/bin/env python3
"""Runs the scim2-tester conformance checker (PyPI) against a Latchkey
admin API and prints every check with its outcome.

Setup (once, outside the repository):
    python3 -m venv /tmp/scim && /tmp/scim/bin/pip install scim2-tester scim2-client httpx2
Then, against a running server and a trusted app holding Identity Domain
Administrator with the client_credentials grant and the scope
urn:opc:idm:__myscopes__ (docs/admin-api.md):
    /tmp/scim/bin/python tools/scim_conformance.py http://127.0.0.1:8080 CLIENT_ID SECRET

Exits 1 when a check fails; docs/admin-api.md ("Conformance") lists the
figures and the checks that are the tool's own mistake.
"""

import sys

import httpx2 as httpx
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    base, client_id, secret = sys.argv[1:4]
    token = httpx.post(
        f"{base}/oauth2/v1/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials", "scope": "urn:opc:idm:__myscopes__"},
    ).json()["access_token"]
    http = httpx.Client(
        base_url=f"{base}/admin/v1", headers={"Authorization": f"Bearer {token}"}
    )
    client = SyncSCIMClient(http)
    client.discover()
    results = check_server(client)
    counts: dict[str, int] = {}
    for result in results:
        status = result.status.name
        counts[status] = counts.get(status, 0) + 1
        if result.status != Status.SUCCESS:
            print(f"{status:8} {result.title}: {result.reason}")
    print(", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())))
    return 1 if any(r.status == Status.ERROR for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
