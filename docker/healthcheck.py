"""Container health probe: GET http://127.0.0.1:$LIVEDESK_PORT<path> (default /healthz).

Exit 0 on a 2xx answer within the timeout, 1 otherwise. Stdlib only (the slim image has no
curl). Usage: ``python healthcheck.py [/healthz|/readyz] [timeout_s]``.
"""

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/healthz"
    timeout = float(argv[2]) if len(argv) > 2 else 2.0
    port = os.environ.get("LIVEDESK_PORT") or "8080"
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            ok = 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"unhealthy: {url}: {e}", file=sys.stderr)
        return 1
    if not ok:
        print(f"unhealthy: {url}: HTTP {resp.status}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
