"""Start cost of the owner's functions: spawn -> first answer (a refused token, which counts the
request in the store's rate limit on a fresh SQLite file), SPAWNS times each, median in ms.
Compares a new owner function with /api/orders (issue 20: no new function costs more to start).
    cargo build --release -p checkout --bin orders --bin order-action
    python3 bench/owner_coldstart.py [SPAWNS]
"""
import os, socket, statistics, subprocess, sys, time, tempfile
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]
def once(binary, method):
    port = free_port()
    env = dict(os.environ, VERCEL_DEV_PORT=str(port), STRIPE_SECRET_KEY="sk_test_coldstart_4242",
               DATABASE_URL="sqlite://" + tempfile.mktemp(suffix=".sqlite3"), ADMIN_TOKEN="a" * 40,
               SITE_URL="http://localhost:3000")
    req = f"{method} /api/x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {'b'*40}\r\nContent-Length: 0\r\n\r\n".encode()
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(req)
                    if s.recv(16).startswith(b"HTTP/1.1"):
                        return (time.perf_counter() - t0) * 1000
            except OSError:
                time.sleep(0.0001)
    finally:
        p.kill(); p.wait()
for name, method in [("orders", "GET"), ("order-action", "POST")]:
    runs = [once(f"target/release/{name}", method) for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 31)]
    print(f"{name}: median {statistics.median(runs):.2f} ms (min {min(runs):.2f}, max {max(runs):.2f})")
