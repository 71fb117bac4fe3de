"""Cold start: spawn -> first 2xx to a signed POST, SPAWNS times; prints the median in ms.

    python3 bench/coldstart.py SPAWNS PAYLOAD SECRET PORT_VAR CMD...   (COLD_ENV: JSON of extra env)

The instrument's own cost per spawn must stay far below what it measures. Python's subprocess
starts the child with vfork + exec from a small process (Node's child_process forks the
whole ~50 MB Node process first, which added ~1 ms to the Rust figures and nothing visible
to Node's 60+ ms), and the poller is a raw socket with a prepared request, retried every
0.1 ms (a refused connect on loopback costs ~20 us). Neither the poller nor the server is
pinned (a pinned server would queue behind whatever else runs on its core).
"""

import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, request):
    """The status code of one attempt, or 0 when nothing answers yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(request)
            head = b""
            while b"\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    return 0
                head += chunk
            return int(head.split(b" ", 2)[1])
    except OSError:
        return 0


def main():
    spawns, payload_file, secret, port_var, *cmd = sys.argv[1:]
    body = open(payload_file, "rb").read()
    extra = json.loads(os.environ.get("COLD_ENV", "{}"))
    times = []
    for _ in range(int(spawns)):
        port = free_port()
        t = int(time.time())
        mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        request = (
            f"POST /api/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Stripe-Signature: t={t},v1={mac}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        env = {"PATH": os.environ["PATH"], port_var: str(port), **extra}
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        status, deadline = 0, t0 + 10
        while time.perf_counter() < deadline:
            status = post(port, request)
            if status:
                break
            time.sleep(0.0001)
        ms = (time.perf_counter() - t0) * 1e3
        child.kill()
        child.wait()
        if not 200 <= status < 300:
            sys.exit(f"coldstart: {' '.join(cmd)} answered {status or 'nothing within 10 s'}")
        times.append(ms)
        time.sleep(0.05)
    print("  spawns (ms): " + " ".join(f"{x:.1f}" for x in sorted(times)), file=sys.stderr)
    print(f"{statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
