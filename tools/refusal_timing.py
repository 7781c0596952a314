#!/usr/bin/env python3
"""Times the sign-in answers an attacker compares (docs/benchmarks.md,
"Refusal timing"): unknown user, wrong password, wrong password of a user
with an imported hash, and a success, against a running server.

Usage: refusal_timing.py ROUNDS [BASE_URL]
The server needs the domain in refusal_timing.toml (apply it first) and
the brute-force limits lifted, e.g.
  latchkey apply tools/refusal_timing.toml
  latchkey serve --set lockout.pair_threshold=1000000 \
      --set lockout.user_threshold=1000000 \
      --set 'rate_limit.per_ip={per_second=100000,burst=100000}'
Prints each class's median and its ratio to the unknown user's.
"""
import base64
import random
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:8080"
AUTH = "Basic " + base64.b64encode(b"t:t-secret-0123456789abcdef").decode()


def once(username, password):
    data = urllib.parse.urlencode(
        {"grant_type": "password", "username": username, "password": password, "scope": "openid"}
    ).encode()
    request = urllib.request.Request(
        BASE + "/oauth2/v1/token",
        data=data,
        headers={"Authorization": AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    start = time.perf_counter()
    try:
        urllib.request.urlopen(request).read()
    except urllib.error.HTTPError as e:
        e.read()
    return time.perf_counter() - start


CLASSES = {
    "unknown": lambda i: ("nobody%d" % i, "x"),
    "wrong": lambda i: ("argon", "wrong"),
    "imported": lambda i: ("imported", "wrong"),
    "success": lambda i: ("argon", "argon password 0123"),
}


def main():
    rounds = int(sys.argv[1])
    times = {k: [] for k in CLASSES}
    for i in range(rounds):
        order = list(CLASSES)
        random.shuffle(order)
        for name in order:
            times[name].append(once(*CLASSES[name](i)))
    medians = {k: statistics.median(v) for k, v in times.items()}
    for name, median in medians.items():
        print("%-9s %7.1f ms  %.3f x unknown" % (name, median * 1000, median / medians["unknown"]))


if __name__ == "__main__":
    main()
