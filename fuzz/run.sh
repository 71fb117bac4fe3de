#!/usr/bin/env bash
# Runs both cargo-fuzz targets for SECONDS in all (default 30: SECONDS/2 each),
# on the stable toolchain. Exits non-zero if a target crashes (a panic, a broken
# invariant, a sanitizer report), a build fails, or a run is cut off.
#
#   bash fuzz/run.sh          # CI's short run
#   bash fuzz/run.sh 3600     # a longer campaign; the corpus grows in fuzz/corpus/<target>
#
# cargo-fuzz drives rustc with -Z flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1
# lets the stable rustc accept them. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL="${1:-30}"
PER=$(( TOTAL / 2 ))
(( PER >= 1 )) || PER=1
TARGETS=(signature_header webhook_handler)
export RUSTC_BOOTSTRAP=1
# Build flags: by default optimised with AddressSanitizer and debug assertions (-a), for real
# campaigns. CI's short run sets FUZZ_BUILD_FLAGS="-a --dev --sanitizer none": an unoptimised
# build without ASan compiles in minutes instead of ~18 on a 2-core machine.
read -r -a flags <<< "${FUZZ_BUILD_FLAGS:--a}"
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz not found; installing it from crates.io (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
echo "fuzz: $(cargo fuzz --version) with $(rustc --version), RUSTC_BOOTSTRAP=1"

echo "fuzz: building ${TARGETS[*]} (release, debug assertions, AddressSanitizer)"
cargo fuzz build "${flags[@]}"

# Seeds: a few well-formed inputs, written when the corpus is empty (the corpus
# itself is not committed).
seed() { # target name bytes...
  local dir="fuzz/corpus/$1"
  mkdir -p "$dir"
  printf "$3" > "$dir/seed-$2"
}
event() { # type livemode object-id
  printf '{"id":"evt_fuzz_%s","object":"event","type":"%s","livemode":%s,"data":{"object":{"id":"%s","object":"checkout.session","payment_status":"paid","metadata":{}}}}' \
    "$RANDOM" "$1" "$2" "$3"
}
if [ -z "$(ls -A fuzz/corpus/signature_header 2>/dev/null)" ]; then
  v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a
  seed signature_header plain   "\x00t=1492774577,v1=$v1\n{\"id\":\"evt_test_webhook\",\"object\":\"event\"}"
  seed signature_header rotated "\x00v0=$v1,v1=$v1,t=1700000000,v1=$v1\n{}"
  seed signature_header signed  "\x01\n{\"id\":\"evt_1\"}"
  seed signature_header spliced "\x81v0=abc,|,v1=$v1\n{}"
fi
if [ -z "$(ls -A fuzz/corpus/webhook_handler 2>/dev/null)" ]; then
  seed webhook_handler completed "\x04\x00\n$(event checkout.session.completed false cs_test_a1)"
  seed webhook_handler failed    "\x04\x00\n$(event checkout.session.async_payment_failed false cs_test_b2)"
  seed webhook_handler expired   "\x14\x00\n$(event checkout.session.expired false cs_test_c3)"
  seed webhook_handler livemode  "\x04\x00\n$(event checkout.session.completed true cs_live_d4)"
  seed webhook_handler other     "\x04\x00\n$(event customer.created false cus_1)"
  seed webhook_handler oldsig    "\x04\xa0\n$(event checkout.session.completed false cs_test_e5)"
  seed webhook_handler forged    "\x10\x00t=1700000000,v1=0000000000000000000000000000000000000000000000000000000000000000\n{}"
  seed webhook_handler get       "\x02\x00\n{}"
fi

rc=0
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/artifacts/$t"
  extra=()
  # The handler logs one JSON line per request on stderr: close the target's
  # stderr (libFuzzer keeps its own) and replay any crash below to show the panic.
  [ "$t" = webhook_handler ] && extra=(-close_fd_mask=2 -dict=fuzz/webhook.dict)
  rm -f /tmp/fuzz-webhook.sqlite3*
  log="fuzz/artifacts/$t/last-run.log"
  touch "$log.start"
  echo "fuzz: running $t for ${PER}s (corpus fuzz/corpus/$t, log $log)"
  # timeout: a hard bound even if libFuzzer ignored -max_total_time.
  if timeout --kill-after=30 $(( PER + 120 )) \
      cargo fuzz run "${flags[@]}" "$t" -- -max_total_time="$PER" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 "${extra[@]}" \
      >"$log" 2>&1; then
    grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added' "$log" | sed "s/^/fuzz: $t: /" || true
    echo "fuzz: $t: no crash"
  else
    rc=1
    echo "fuzz: $t: FAILED (see $log); last lines:"
    grep -v '^{"level"' "$log" | tail -n 40 | sed "s/^/  /"
    # Replay what this run found (older artifacts are left alone).
    find "fuzz/artifacts/$t" -maxdepth 1 -type f -newer "$log.start" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) |
    while read -r a; do
      echo "fuzz: $t: replaying $a (reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run -a $t $a)"
      timeout 120 cargo fuzz run "${flags[@]}" "$t" "$a" 2>&1 | grep -v '^{"level"' | tail -n 25 | sed "s/^/  /" || true
    done
  fi
done
exit "$rc"
