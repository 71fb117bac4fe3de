#!/usr/bin/env bash
# Whole-process comparison of our webhook function binary with the floor (the bare
# verifier, bench/bare: a vercel_runtime function that only checks the signature) and
# with the Node.js peer (bench/peer/server.js: Stripe's docs sample, npm `stripe`
# constructEvent), on this machine, with the same signed payload and the same load.
# The server runs pinned to one core (SERVER_CPU) and wrk to another (LOAD_CPU), so
# the CPU each server spends per request is measured apart from the load generator.
#
#   bash bench/run.sh                 # build (once; fat LTO is slow), then measure
#   SKIP_BUILD=1 bash bench/run.sh    # measure the binaries already in target/release
#   BIN_DIR=/tmp/old bash bench/run.sh  # measure function binaries copied from another build
#   DURATION=10s CONNECTIONS=32 THREADS=2 SPAWNS=10 SERVER_CPU=1 LOAD_CPU=0 bash bench/run.sh
#
# Needs cargo, node (>= 20), npm (first run installs bench/peer/node_modules from
# the lockfile) and wrk (installed with apt-get when missing and running as root).
# Only 127.0.0.1 is loaded. Every wait has a limit; every process started here
# is killed on exit; the measurement phase is capped at 300 s by a watchdog.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER="$ROOT/bench/peer"
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
SPAWNS=${SPAWNS:-10}
BIN_DIR=${BIN_DIR:-}   # measure function binaries from another directory (implies SKIP_BUILD)
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
WORK=$(mktemp -d /tmp/checkout-bench.XXXXXX)
WHSEC="whsec_bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "bench/run.sh: interrupted" >&2; exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
die() { echo "bench/run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
command -v cargo >/dev/null || die "cargo not found"
command -v node >/dev/null || die "node not found"
if ! command -v wrk >/dev/null; then
  [ "$(id -u)" = 0 ] || die "wrk not found (apt-get install wrk)"
  say "installing wrk (Debian package)"
  timeout 180 bash -c 'apt-get update -qq && apt-get install -y -qq wrk' >/dev/null
fi
if [ ! -d "$PEER/node_modules/stripe" ]; then
  say "installing the peer's npm dependencies (npm ci)"
  (cd "$PEER" && timeout 180 npm ci --no-audit --no-fund --loglevel=error)
fi

# taskset pins a process to one core when the machine has more than one.
PIN_SERVER=() PIN_LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ]; then
  PIN_SERVER=(taskset -c "$SERVER_CPU") PIN_LOAD=(taskset -c "$LOAD_CPU")
fi

# ---------------------------------------------------------------- build
# Every function: each api/NAME.rs is the [[bin]] NAME (the route table's functions).
mapfile -t BINS < <(cd "$ROOT/api" && ls -1 *.rs | sed 's/\.rs$//')
if [ -z "${SKIP_BUILD:-}" ] && [ -z "$BIN_DIR" ]; then
  say "cargo build --release (fat LTO: slow the first time)"
  (cd "$ROOT" && cargo build --release -p checkout $(printf -- '--bin %s ' "${BINS[@]}"))
  (cd "$ROOT" && cargo build --release -p bare-verifier)
fi
BIN_DIR=${BIN_DIR:-$ROOT/target/release}
for b in "${BINS[@]}"; do
  [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b missing (run without SKIP_BUILD)"
done
[ -x "$ROOT/target/release/bare-verifier" ] || die "target/release/bare-verifier missing (run without SKIP_BUILD)"
RUST_BIN="$BIN_DIR/webhook"
BARE_BIN="$ROOT/target/release/bare-verifier"

# The measurement phase is bounded from here on.
( trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep 300 & sp=$!; wait "$sp"
  echo "bench/run.sh: 300 s watchdog fired" >&2; kill -TERM $$ ) 2>/dev/null &
PIDS+=($!)

# ---------------------------------------------------------------- helpers (node)
# payload.js: writes the ~3 KB event; `sign` prints a fresh Stripe-Signature.
cat >"$WORK/payload.js" <<'EOF'
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const [, , cmd, file, secret] = process.argv;
if (cmd === 'write') {
  const now = Math.floor(Date.now() / 1000);
  // A checkout.session.completed-shaped event (livemode false), but of type
  // customer.created: our webhook acknowledges it without calling Stripe or
  // the store, and the peer only acknowledges it: both verify + parse + ack.
  const session = {
    id: 'cs_test_b1Qm3n8ZxYtR4kLp9WvA2sD7fG5hJ0kL3zXc6vB9nM1qW4eR7tY2uI5oP8aS',
    object: 'checkout.session', after_expiration: null, allow_promotion_codes: false,
    amount_subtotal: 2800, amount_total: 2520, billing_address_collection: null,
    cancel_url: 'https://shop.example.com/?canceled=1', client_reference_id: 'ord_7f3a9c2e5b1d4f6a',
    client_secret: null, consent: null, consent_collection: null, created: now - 120,
    currency: 'usd', currency_conversion: null, custom_fields: [], customer: null,
    customer_creation: 'if_required',
    customer_details: {
      address: { city: 'Berlin', country: 'DE', line1: 'Hauptstraße 1', line2: null, postal_code: '10115', state: null },
      email: 'jenny.rosen@example.com', name: 'Jenny Rosen', phone: null, tax_exempt: 'none', tax_ids: [],
    },
    customer_email: null,
    discounts: [{ coupon: null, promotion_code: 'promo_1QbXyZ2eZvKYlo2C8aBcDeFg' }],
    expires_at: now + 86280, invoice: null, livemode: false, locale: null,
    metadata: { cart: 'mug:2', order_ref: 'ord_7f3a9c2e5b1d4f6a' }, mode: 'payment',
    payment_intent: 'pi_3QbXyZ2eZvKYlo2C1a2b3c4d', payment_link: null,
    payment_method_collection: 'if_required',
    payment_method_options: { card: { request_three_d_secure: 'automatic' } },
    payment_method_types: ['card', 'link'], payment_status: 'paid', permissions: null,
    phone_number_collection: { enabled: false }, recovered_from: null,
    saved_payment_method_options: null, setup_intent: null, shipping_address_collection: null,
    shipping_cost: null, shipping_options: [], status: 'complete', submit_type: null,
    subscription: null, success_url: 'https://shop.example.com/success.html?session_id={CHECKOUT_SESSION_ID}',
    total_details: { amount_discount: 280, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted', url: null, wallet_options: null,
  };
  const event = {
    id: 'evt_1QbXyZ2eZvKYlo2CqRsTuVwX', object: 'event', api_version: '2025-03-31.basil',
    created: now - 5, data: { object: session }, livemode: false, pending_webhooks: 1,
    request: { id: null, idempotency_key: null }, type: 'customer.created',
  };
  let body = JSON.stringify(event, null, 2);
  session.metadata.note = 'x'.repeat(Math.max(0, 3072 - Buffer.byteLength(body) - 22));
  body = JSON.stringify(event, null, 2);
  fs.writeFileSync(file, body);
  console.log(Buffer.byteLength(body));
} else if (cmd === 'sign') {
  const body = fs.readFileSync(file);
  const t = Math.floor(Date.now() / 1000);
  const v1 = crypto.createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  console.log(`t=${t},v1=${v1}`);
}
EOF



free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# wait_2xx PORT: a signed POST answers 2xx within 10 s.
wait_2xx() {
  local port=$1 sig i code
  sig=$(node "$WORK/payload.js" sign "$WORK/payload.json" "$WHSEC")
  for i in $(seq 1 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST \
      -H 'content-type: application/json' -H "stripe-signature: $sig" \
      --data-binary "@$WORK/payload.json" "http://127.0.0.1:$port/api/webhook" || true)
    case $code in 2??) return 0 ;; 000) sleep 0.05 ;; *) die "port $port answered $code to a signed POST" ;; esac
  done
  die "port $port did not answer 2xx within 10 s"
}

# to_ms VALUE: wrk's "1.23ms" / "456.00us" / "1.01s" in ms.
to_ms() { awk -v v="$1" 'BEGIN{ n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n+=0; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'; }

# load NAME PORT PID: wrk against one server; sets RPS_, P50_, P99_, CPU_ (server CPU
# time per request: user+sys of the server process over the run / requests) and RSS_<NAME>.
load() {
  local name=$1 port=$2 pid=$3 out sig non2xx cpu0 cpu1 reqs
  sig=$(node "$WORK/payload.js" sign "$WORK/payload.json" "$WHSEC")
  # 2 s warm-up (JIT for Node, connection pool for both), then the measured run.
  BENCH_PAYLOAD="$WORK/payload.json" BENCH_SIGNATURE="$sig" \
    timeout 20 "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$ROOT/bench/post.lua" "http://127.0.0.1:$port/api/webhook" >/dev/null
  sig=$(node "$WORK/payload.js" sign "$WORK/payload.json" "$WHSEC") # fresh: tolerance is 300 s
  cpu0=$(awk '{print $14+$15}' "/proc/$pid/stat") # utime+stime, clock ticks
  out=$(BENCH_PAYLOAD="$WORK/payload.json" BENCH_SIGNATURE="$sig" \
    timeout 60 "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$ROOT/bench/post.lua" \
    "http://127.0.0.1:$port/api/webhook")
  echo "$out" | sed 's/^/  /'
  non2xx=$(echo "$out" | awk '/Non-2xx or 3xx responses:/{print $NF}')
  [ -z "$non2xx" ] || die "$name: $non2xx non-2xx responses under load (signature or server problem)"
  printf -v "RPS_$name" '%s' "$(echo "$out" | awk '/^Requests\/sec:/{print $2}')"
  printf -v "P50_$name" '%s' "$(to_ms "$(echo "$out" | awk '$1=="50%"{print $2}')")"
  printf -v "P99_$name" '%s' "$(to_ms "$(echo "$out" | awk '$1=="99%"{print $2}')")"
  cpu1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  printf -v "CPU_$name" '%s' "$(awk -v c=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$reqs" 'BEGIN{printf "%.1f", c/hz*1e6/n}')" # server CPU us/request
  printf -v "RSS_$name" '%s' "$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status")" # kB
}

# ---------------------------------------------------------------- payload
BYTES=$(node "$WORK/payload.js" write "$WORK/payload.json")
say "payload: $BYTES bytes, a checkout.session-shaped event with livemode false and type customer.created"
echo "  Our webhook acknowledges this type without calling Stripe or the store, and the peer only"
echo "  acknowledges it: both sides do verify (HMAC-SHA256, constant-time compare) + JSON parse + 200 only."
echo "  Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  node $(node --version), stripe $(node -p 'require(process.argv[1]).version' "$PEER/node_modules/stripe/package.json"), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"

# ---------------------------------------------------------------- sizes
say "function binaries (release profile of Cargo.toml: fat LTO, panic=abort, stripped)"
MAX_SIZE=0
for b in "${BINS[@]}"; do
  s=$(stat -c %s "$BIN_DIR/$b")
  printf '  %-16s %9d bytes  %6.2f MiB\n' "$b" "$s" "$(awk -v s="$s" 'BEGIN{print s/1048576}')"
  [ "$s" -gt "$MAX_SIZE" ] && MAX_SIZE=$s
done
NODE_SIZE=$(stat -L -c %s "$(command -v node)")
MODS_SIZE=$(du -sb "$PEER/node_modules" | cut -f1)
printf '  %-16s %9d bytes  %6.2f MiB  (bench only, never deployed)\n' bare-verifier "$(stat -c %s "$BARE_BIN")" \
  "$(awk -v s="$(stat -c %s "$BARE_BIN")" 'BEGIN{print s/1048576}')"
printf '  peer: node executable %.1f MiB + node_modules %.1f MiB (+ server.js)\n' \
  "$(awk -v s="$NODE_SIZE" 'BEGIN{print s/1048576}')" "$(awk -v s="$MODS_SIZE" 'BEGIN{print s/1048576}')"

RUST_ENV=$(printf '{"STRIPE_SECRET_KEY":"sk_test_bench","STRIPE_WEBHOOK_SECRET":"%s","DATABASE_URL":"sqlite://%s/bench-rust.sqlite3"}' "$WHSEC" "$WORK")
BARE_ENV=$(printf '{"STRIPE_WEBHOOK_SECRET":"%s"}' "$WHSEC")
NODE_ENV_JSON=$(printf '{"STRIPE_SECRET_KEY":"sk_test_bench","STRIPE_WEBHOOK_SECRET":"%s"}' "$WHSEC")

# ---------------------------------------------------------------- cold start
say "cold start: spawn -> first 2xx to a signed POST (bench/coldstart.py: vfork + exec, 0.1 ms polling), median of $SPAWNS spawns"
echo "  Rust webhook binary:"
COLD_rust=$(COLD_ENV="$RUST_ENV" timeout 120 python3 "$ROOT/bench/coldstart.py" "$SPAWNS" "$WORK/payload.json" "$WHSEC" VERCEL_DEV_PORT "$RUST_BIN")
echo "  median $COLD_rust ms"
echo "  bare verifier:"
COLD_bare=$(COLD_ENV="$BARE_ENV" timeout 120 python3 "$ROOT/bench/coldstart.py" "$SPAWNS" "$WORK/payload.json" "$WHSEC" VERCEL_DEV_PORT "$BARE_BIN")
echo "  median $COLD_bare ms"
echo "  Node peer:"
COLD_node=$(COLD_ENV="$NODE_ENV_JSON" timeout 120 python3 "$ROOT/bench/coldstart.py" "$SPAWNS" "$WORK/payload.json" "$WHSEC" PORT node "$PEER/server.js")
echo "  median $COLD_node ms"

# ---------------------------------------------------------------- load
say "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, POST /api/webhook (signed), after a 2 s warm-up"
[ ${#PIN_SERVER[@]} -eq 0 ] || echo "  server pinned to core $SERVER_CPU, wrk to core $LOAD_CPU"
# serve_and_load NAME LABEL PORT VAR=VALUE... CMD...: starts CMD with a clean environment (only
# PATH and the given variables) on PORT, shows its answer to one signed POST, loads it, stops it.
serve_and_load() {
  local name=$1 label=$2 port=$3 pid
  shift 3
  "${PIN_SERVER[@]}" env -i PATH="$PATH" "$@" >/dev/null 2>"$WORK/$name.log" &
  pid=$!
  PIDS+=("$pid")
  wait_2xx "$port"
  echo "  $label (pid $pid), answer: $(curl -s --max-time 2 -X POST -H "stripe-signature: $(node "$WORK/payload.js" sign "$WORK/payload.json" "$WHSEC")" --data-binary "@$WORK/payload.json" "http://127.0.0.1:$port/api/webhook")"
  load "$name" "$port" "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
PORT=$(free_port)
serve_and_load rust "Rust webhook binary" "$PORT" VERCEL_DEV_PORT="$PORT" STRIPE_SECRET_KEY=sk_test_bench \
  STRIPE_WEBHOOK_SECRET="$WHSEC" DATABASE_URL="sqlite://$WORK/bench-rust.sqlite3" "$RUST_BIN"
PORT=$(free_port)
serve_and_load bare "bare verifier" "$PORT" VERCEL_DEV_PORT="$PORT" STRIPE_WEBHOOK_SECRET="$WHSEC" "$BARE_BIN"
PORT=$(free_port)
serve_and_load node "Node peer" "$PORT" PORT="$PORT" STRIPE_SECRET_KEY=sk_test_bench \
  STRIPE_WEBHOOK_SECRET="$WHSEC" node "$PEER/server.js"

# ---------------------------------------------------------------- table
say "result ($(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg); CPU/request is the robust figure, req/s moves with the machine's load)"
echo "  server log lines: rust $(wc -l <"$WORK/rust.log"), bare $(wc -l <"$WORK/bare.log"), node $(wc -l <"$WORK/node.log")"
awk -v rr="$RPS_rust" -v rb="$RPS_bare" -v rn="$RPS_node" -v p50r="$P50_rust" -v p50b="$P50_bare" -v p50n="$P50_node" \
    -v p99r="$P99_rust" -v p99b="$P99_bare" -v p99n="$P99_node" -v cr="$COLD_rust" -v cb="$COLD_bare" -v cn="$COLD_node" \
    -v cpur="$CPU_rust" -v cpub="$CPU_bare" -v cpun="$CPU_node" -v size="$MAX_SIZE" \
    -v rssr="$RSS_rust" -v rssb="$RSS_bare" -v rssn="$RSS_node" 'BEGIN {
  ok = "met"; no = "**MISSED**"
  printf "| metric | our webhook | bare verifier | Node peer | |\n|---|---:|---:|---:|---|\n"
  printf "| server CPU per request (us, user+sys) | %.1f | %.1f | %.1f | ours %.2fx the bare verifier (target <= 1.5x: %s), %.2fx below Node (target >= 3.5x: %s) |\n", \
    cpur, cpub, cpun, cpur/cpub, (cpur/cpub <= 1.5 ? ok : no), cpun/cpur, (cpun/cpur >= 3.5 ? ok : no)
  printf "| throughput (req/s) | %.0f | %.0f | %.0f | ours %.2fx Node |\n", rr, rb, rn, rr/rn
  printf "| latency p50 / p99 (ms) | %.3f / %.3f | %.3f / %.3f | %.3f / %.3f | |\n", p50r, p99r, p50b, p99b, p50n, p99n
  printf "| cold start, spawn to first 2xx (ms, median) | %.2f | %.2f | %.2f | ours %.1fx faster than Node (target >= 30x: %s) |\n", cr, cb, cn, cn/cr, (cn/cr >= 30 ? ok : no)
  printf "| largest function binary (MiB, stripped) | %.2f | | | target <= 6 MiB: %s |\n", size/1048576, (size <= 6*1048576 ? ok : no)
  printf "| peak RSS after load, VmHWM (MiB) | %.1f | %.1f | %.1f | |\n", rssr/1024, rssb/1024, rssn/1024
}'
