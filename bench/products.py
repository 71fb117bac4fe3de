"""GET /api/products for both catalog sources: cold start (spawn -> first 200, a fresh process
each time) and warm latency (p50/p99 of sequential requests on one keep-alive connection).

The Stripe source answers from the store's copy: the copy is filled once from the emulator (the
catalog.json products, created through its API as Products with default Prices), then every
measured process reads a fresh copy of that filled SQLite file with STRIPE_API_BASE pointed at a
closed port, so a 200 proves the answer came from the store, not from Stripe. The file source
gets the same SQLite file (both open the store at start). Runs alternate between the sources.

    cargo build --release -p checkout --bin products && cargo build -p stripe-emulator
    python3 bench/products.py [SPAWNS] [REQUESTS]
"""
import json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target/release/products")
EMULATOR = os.path.join(ROOT, "target/debug/stripe-emulator")
KEY = "sk_test_bench_products_4242"
TAG = "bench"
SPAWNS = int(sys.argv[1]) if len(sys.argv) > 1 else 21
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
WORK = tempfile.mkdtemp(prefix="products-bench-")
REQ = b"GET /api/products HTTP/1.1\r\nHost: localhost\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_response(s):
    """Reads one HTTP/1.1 response (Content-Length framed): (status, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        body += s.recv(65536)
    return status, body


def copy_db(src, dst):
    """Copies a SQLite store with its write-ahead log (the filling process was killed, so the
    copy may still be in the log)."""
    for suffix in ("", "-wal"):
        if os.path.exists(src + suffix):
            shutil.copy(src + suffix, dst + suffix)


def env_for(source, db, port, api_base):
    return dict(
        os.environ,
        VERCEL_DEV_PORT=str(port),
        STRIPE_SECRET_KEY=KEY,
        STRIPE_API_BASE=api_base,
        DATABASE_URL="sqlite://" + db,
        SITE_URL="http://localhost:3000",
        CATALOG_SOURCE=source,
        CATALOG_TAG=TAG,
    )


def spawn(source, db, api_base):
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen([BIN], env=env_for(source, db, port, api_base), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            if p.poll() is not None:
                raise SystemExit(f"{source}: the function exited with {p.returncode}")
            time.sleep(0.0001)
    s.sendall(REQ)
    status, body = read_response(s)
    ms = (time.perf_counter() - t0) * 1000
    return p, s, status, body, ms


def fill():
    """The filled SQLite copy: the emulator gets the catalog as Products, one process fills."""
    port = free_port()
    emu = subprocess.Popen([EMULATOR], env=dict(os.environ, EMULATOR_PORT=str(port)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.01)
        catalog = json.load(open(os.path.join(ROOT, "src/catalog.json")))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for i, p in enumerate(catalog["products"]):
            form = {
                "id": p["id"], "name": p["name"], "description": p["description"], "metadata[shop]": TAG,
                "metadata[shippable]": str(p["shippable"]).lower(), "metadata[max_quantity]": str(p["max_quantity"]),
                "metadata[order]": str(i), "default_price_data[currency]": p["currency"],
                "default_price_data[unit_amount]": str(p["unit_amount"]),
            }
            data = urllib.parse.urlencode(form).encode()
            req = urllib.request.Request(base + "/v1/products", data=data, headers={"Authorization": "Bearer " + KEY})
            opener.open(req).read()
        db = os.path.join(WORK, "filled.sqlite3")
        p, s, status, body, _ = spawn("stripe", db, base)
        s.close(); p.kill(); p.wait()
        n = len(json.loads(body)["products"])
        assert status == 200 and n == len(catalog["products"]), (status, body[:200])
        return db, n
    finally:
        emu.kill(); emu.wait()


def main():
    filled, n = fill()
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: a Stripe call would fail
    cold = {"file": [], "stripe": []}
    bodies = {}
    for i in range(SPAWNS):
        for source in ("file", "stripe") if i % 2 == 0 else ("stripe", "file"):
            db = os.path.join(WORK, f"{source}-{i}.sqlite3")
            copy_db(filled, db)
            p, s, status, body, ms = spawn(source, db, closed)
            s.close(); p.kill(); p.wait()
            assert status == 200, (source, status, body[:200])
            cold[source].append(ms)
            bodies[source] = json.loads(body)
    assert [x["unit_amount"] for x in bodies["file"]["products"]] == [x["unit_amount"] for x in bodies["stripe"]["products"]]
    warm = {}
    for source in ("file", "stripe"):
        db = os.path.join(WORK, f"{source}-warm.sqlite3")
        copy_db(filled, db)
        p, s, status, _, _ = spawn(source, db, closed)
        lat = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            s.sendall(REQ)
            status, _ = read_response(s)
            lat.append((time.perf_counter() - t0) * 1e6)
            assert status == 200
        s.close(); p.kill(); p.wait()
        lat.sort()
        warm[source] = (lat[len(lat) // 2], lat[int(len(lat) * 0.99)])
    for source in ("file", "stripe"):
        c = cold[source]
        print(f"{source:6}: cold start median {statistics.median(c):.2f} ms (min {min(c):.2f}, max {max(c):.2f}, "
              f"{len(c)} spawns); warm p50 {warm[source][0]:.0f} us, p99 {warm[source][1]:.0f} us ({REQUESTS} requests)")
    ratio = statistics.median(cold["stripe"]) / statistics.median(cold["file"])
    print(f"stripe/file cold start: {ratio:.2f}x (target <= 2x); {n} products")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
