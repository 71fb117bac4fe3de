#!/usr/bin/env bash
# End-to-end check of the deployed shape: `vercel dev --local` (the pinned Vercel CLI from
# tests/vercel/package.json) serving public/ and building/spawning every api/*.rs function,
# fully offline against a standalone stripe-emulator.
#
#   (cd tests/vercel && npm ci)   # once
#   bash tests/vercel/run.sh
#
# The developer's own .env and checkout.sqlite3 are never touched: the working tree (tracked and
# untracked-but-not-ignored files) is copied to a temp dir, which gets its own .env; the
# functions are built into the repo's target/ (CARGO_TARGET_DIR) so builds are shared.
# Nothing is reached but 127.0.0.1 (CARGO_NET_OFFLINE, VERCEL_TELEMETRY_DISABLED).
# Env: VERCEL_DEV_KEEP=1 keeps the temp dir (logs, copy) for inspection.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/vercel-dev.XXXXXX")"
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    # Each background job runs in its own process group (set -m below): end the whole group,
    # i.e. vercel and the function processes it spawned.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ $status -ne 0 || ${VERCEL_DEV_KEEP:-} = 1 ]]; then
    for log in "$tmp"/*.log; do
      [[ -f $log ]] || continue
      echo "---- last lines of $(basename "$log") ----" >&2
      tail -n 40 "$log" >&2
    done
  fi
  if [[ ${VERCEL_DEV_KEEP:-} = 1 ]]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
set -m # background jobs get their own process groups, so cleanup can end their children

# Five distinct free loopback ports: emulator, vercel dev, and vercel's local resource servers
# (Queues, Runtime Cache, Schedules; fixed defaults 4782-4784 would collide between runs).
read -r emu_port dev_port queue_port cache_port sched_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
emu="http://127.0.0.1:$emu_port"
base="http://127.0.0.1:$dev_port"
site="http://localhost:$dev_port"
secret="whsec_vercel_dev_e2e"

# --- the project copy ---------------------------------------------------------------------
work="$tmp/repo"
copy_tree "$work"
cat > "$work/.env" <<EOF
STRIPE_SECRET_KEY=sk_test_vercel_dev_e2e
STRIPE_PUBLISHABLE_KEY=pk_test_vercel_dev_e2e
STRIPE_WEBHOOK_SECRET=$secret
STRIPE_API_BASE=$emu
SITE_URL=$site
DATABASE_URL=sqlite://$tmp/checkout.sqlite3
EOF

# --- builds ---------------------------------------------------------------------------------
# vercel dev builds each function on its first request (`cargo build --bin NAME`); building
# them here first shows compiler errors plainly and keeps the request timeouts short. The
# builder's own cargo build then finds them fresh.
echo "building stripe-emulator and the functions (CARGO_TARGET_DIR=$target) ..."
started=$SECONDS
cargo build --manifest-path "$work/Cargo.toml" -p stripe-emulator
cargo build --manifest-path "$work/Cargo.toml" -p checkout --bins
echo "built in $((SECONDS - started))s"

# --- processes ------------------------------------------------------------------------------
wait_for() { # NAME PID URL SECONDS: poll until URL answers any HTTP status
  local name=$1 pid=$2 url=$3 limit=$4 i
  for ((i = 0; i < limit * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || { echo "$name exited before it was ready" >&2; return 1; }
    curl -s -o /dev/null --max-time 2 "$url" && return 0
    sleep 0.25
  done
  echo "$name not ready after ${limit}s" >&2
  return 1
}

EMULATOR_PORT=$emu_port EMULATOR_WEBHOOK_SECRET=$secret EMULATOR_WEBHOOK_URL="$base/api/webhook" \
  "$target/debug/stripe-emulator" >"$tmp/emulator.log" 2>&1 </dev/null &
emu_pid=$!
disown "$emu_pid" # no job-control chatter; cleanup ends it
pids+=("$emu_pid")
wait_for stripe-emulator "$emu_pid" "$emu/" 20

started=$SECONDS
(cd "$work" && exec "$vercel" dev --local --yes --listen "127.0.0.1:$dev_port" \
  --global-config "$tmp/vercel-global" --queue-port "$queue_port" \
  --runtime-cache-port "$cache_port" --schedules-port "$sched_port") \
  >"$tmp/vercel.log" 2>&1 </dev/null &
dev_pid=$!
disown "$dev_pid"
pids+=("$dev_pid")
wait_for "vercel dev" "$dev_pid" "$base/" 90
echo "vercel dev ready in $((SECONDS - started))s on $base (emulator $emu)"

# --- checks ---------------------------------------------------------------------------------
passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$1"; }
ko() { failed=$((failed + 1)); printf 'FAIL %s\n' "$1"; [[ -z ${2:-} ]] || printf '     %s\n' "${2:0:600}"; }

# req NAME METHOD PATH [curl args...]: sets $code, $headers (lower-cased), $body.
req() {
  local method=$1 path=$2
  shift 2
  local hfile="$tmp/headers" bfile="$tmp/body" t0=$SECONDS
  code=$(curl -s -X "$method" --max-time 120 -D "$hfile" -o "$bfile" -w '%{http_code}' \
    "$@" "$base$path") || code="curl-error-$?"
  headers=$(tr -d '\r' <"$hfile" 2>/dev/null | tr '[:upper:]' '[:lower:]' || true)
  body=$(cat "$bfile" 2>/dev/null || true)
  elapsed=$((SECONDS - t0))
}
# json EXPR: evaluate a Python expression over the parsed $body (bound to j); prints the result.
json() { JSON_BODY=$body python3 -c "import json,os,sys; j=json.loads(os.environ['JSON_BODY']); r=($1); print('' if r is None else r)" 2>/dev/null; }
has_header() { grep -q "^$1:" <<<"$headers"; }

cart='{"items":[{"id":"tshirt","quantity":1}]}'
same_site=(-H "Origin: $site" -H "Content-Type: application/json")

req GET /
if [[ $code = 200 ]] && grep -q '^content-type: text/html' <<<"$headers" \
  && grep -qi '<html' <<<"$body" \
  && grep -q "^content-security-policy: default-src 'self'" <<<"$headers"; then
  ok "GET / serves the page (html, vercel.json CSP)"
else
  ko "GET / serves the page (html, vercel.json CSP)" "status $code; headers: $headers"
fi

# vercel.json's headers as the CLI's router applies them: one CSP per page, Stripe's (Stripe.js
# and embedded Checkout) on the storefront only, the strict 'self' one elsewhere.
for page in / /index.html /admin.html /success.html; do
  req GET "$page"
  csps=$(grep -c '^content-security-policy:' <<<"$headers" || true)
  if [[ $page = / || $page = /index.html ]]; then
    want="script-src 'self' https://js.stripe.com https://\*.js.stripe.com https://checkout.stripe.com;"
  else
    want="script-src 'self'; .*frame-src 'none';"
  fi
  if [[ $code = 200 && $csps = 1 ]] && grep -q "^content-security-policy: .*$want" <<<"$headers" \
    && grep -q '^x-frame-options: deny' <<<"$headers"; then
    ok "GET $page: one CSP, the $([[ $page = / || $page = /index.html ]] && echo "storefront's (Stripe.js, Checkout)" || echo "strict 'self'") one"
  else
    ko "GET $page: one CSP, the right one" "status $code, $csps CSP headers: $(grep '^content-security-policy:' <<<"$headers")"
  fi
done

req GET /api/products
if [[ $code = 200 ]] && grep -q '^content-type: application/json' <<<"$headers" \
  && [[ $(json "len(j['products']) > 0 and j['publishable_key']") = pk_test_vercel_dev_e2e ]]; then
  ok "GET /api/products: 200 JSON catalog (${elapsed}s)"
else
  ko "GET /api/products: 200 JSON catalog" "status $code: $body"
fi

req POST /api/create-checkout "${same_site[@]}" --data "$cart"
url=$(json "j['url']" || true)
if [[ $code = 200 && $url = "$emu/"* ]]; then
  ok "POST /api/create-checkout (same-site Origin): 200, url on the emulator (${elapsed}s)"
else
  ko "POST /api/create-checkout (same-site Origin): 200, url on the emulator" "status $code: $body"
fi
session=$(grep -o 'cs_test_[A-Za-z0-9]*' <<<"$url" | head -n 1 || true)

req POST /api/create-checkout -H "Origin: https://evil.example" -H "Content-Type: application/json" \
  --data "$cart"
if [[ $code = 403 || $code = 400 ]]; then
  ok "POST /api/create-checkout from a foreign Origin: refused ($code)"
else
  ko "POST /api/create-checkout from a foreign Origin: refused" "status $code: $body"
fi

req POST /api/apply-discount "${same_site[@]}" --data "$cart"
if [[ $code = 200 ]] && [[ -n $(json "j" || true) ]]; then
  ok "POST /api/apply-discount: 200 totals (${elapsed}s)"
else
  ko "POST /api/apply-discount: 200 totals" "status $code: $body"
fi

if [[ -n $session ]]; then
  req GET "/api/checkout-status?session_id=$session"
  if [[ $code = 200 ]] && [[ -n $(json "j" || true) ]]; then
    ok "GET /api/checkout-status?session_id=$session: 200"
  else
    ko "GET /api/checkout-status?session_id=$session: 200" "status $code: $body"
  fi
else
  ko "GET /api/checkout-status: no session id from create-checkout"
fi

# A Stripe-shaped event, signed like Stripe does: v1 = HMAC-SHA256("{t}.{body}", whsec string).
event=$(python3 -c 'import json,time; print(json.dumps({"id":"evt_vercel_dev_%d" % time.time_ns(), "object":"event", "type":"customer.created", "api_version":"2025-01-01", "created":int(time.time()), "livemode":False, "data":{"object":{"id":"cus_vercel_dev","object":"customer"}}}, separators=(",",":")))')
sign() { # SECRET PAYLOAD -> Stripe-Signature header value
  python3 -c 'import hashlib, hmac, sys, time
t = int(time.time())
mac = hmac.new(sys.argv[1].encode(), b"%d.%s" % (t, sys.argv[2].encode()), hashlib.sha256)
print("t=%d,v1=%s" % (t, mac.hexdigest()))' "$1" "$2"
}
json_post=(-H "Content-Type: application/json" --data-binary)

sig=$(sign "$secret" "$event")
req POST /api/webhook -H "Stripe-Signature: $sig" "${json_post[@]}" "$event"
if [[ $code = 200 && $(json "j['received']") = True ]]; then
  ok "POST /api/webhook, correctly signed: 200 received ($(json "j.get('result')"))"
else
  ko "POST /api/webhook, correctly signed: 200 received" "status $code: $body"
fi

req POST /api/webhook "${json_post[@]}" "$event"
if [[ $code = 400 ]]; then
  ok "POST /api/webhook, unsigned: 400"
else
  ko "POST /api/webhook, unsigned: 400" "status $code: $body"
fi

sig=$(sign whsec_some_other_secret "$event")
req POST /api/webhook -H "Stripe-Signature: $sig" "${json_post[@]}" "$event"
if [[ $code = 400 ]]; then
  ok "POST /api/webhook, signed with another secret: 400"
else
  ko "POST /api/webhook, signed with another secret: 400" "status $code: $body"
fi

# The whole loop: pay on the emulator, which delivers signed checkout.session.completed to
# $base/api/webhook through vercel dev; the order must then read as paid.
if [[ -n $session ]]; then
  pay_code=$(curl -s -o /dev/null --max-time 10 -w '%{http_code}' -X POST \
    -H "Content-Type: application/json" --data '{"action":"pay"}' \
    "$emu/_emulator/sessions/$session/pay" || true)
  fulfillment=""
  for _ in $(seq 1 40); do
    req GET "/api/checkout-status?session_id=$session"
    fulfillment=$(json "j.get('fulfillment')" || true)
    [[ $fulfillment = fulfilled ]] && break
    sleep 0.5
  done
  deliveries=$(curl -s --max-time 5 "$emu/_emulator/deliveries" || true)
  delivered=$(JSON_BODY=$deliveries python3 -c 'import json, os
print(",".join(str(d.get("status")) for d in json.loads(os.environ["JSON_BODY"])
               if d.get("event_type") == "checkout.session.completed"))' 2>/dev/null || true)
  if [[ $pay_code = 200 && $delivered = 200 && $fulfillment = fulfilled ]]; then
    ok "paid on the emulator: its signed checkout.session.completed got 200, order fulfilled"
  else
    ko "paid on the emulator: its signed checkout.session.completed got 200, order fulfilled" \
      "pay: $pay_code; delivery statuses: ${delivered:-none}; checkout-status: $body"
  fi
fi

echo "vercel dev: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
