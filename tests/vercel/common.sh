# Shared by run.sh (`vercel dev --local`) and build.sh (`vercel build`): the pinned CLI, a
# hermetic offline environment, Cargo's offline metadata check and a scratch copy of the
# working tree. Source it from a script that has `set -euo pipefail`.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
vercel="$repo/tests/vercel/node_modules/.bin/vercel"
if [[ ! -x $vercel ]]; then
  echo "vercel CLI not installed: (cd tests/vercel && npm install)" >&2
  exit 2
fi
for tool in cargo curl python3 git; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done

target="${CARGO_TARGET_DIR:-$repo/target}"
[[ $target = /* ]] || target="$repo/$target"
export CARGO_TARGET_DIR="$target" CARGO_NET_OFFLINE=true CARGO_TERM_COLOR=never
export VERCEL_TELEMETRY_DISABLED=1 NO_UPDATE_NOTIFIER=1 FORCE_COLOR=0
# Run from `cargo test` (devserver/tests/vercel_dev.rs), this inherits the variables Cargo sets for a
# test process. Build scripts watch some of them (ring: rerun-if-env-changed=CARGO_PKG_NAME,
# CARGO_MANIFEST_DIR, OUT_DIR, ...), so leaving them set rebuilds ring, rustls and everything
# above it here, and again in the next plain build of the repo.
for var in $(compgen -v | grep -E '^(CARGO_PKG_|CARGO_BIN_EXE_)' || true); do unset "$var"; done
unset CARGO_MANIFEST_DIR CARGO_MANIFEST_PATH CARGO_MANIFEST_LINKS CARGO_CRATE_NAME \
  CARGO_PRIMARY_PACKAGE CARGO_TARGET_TMPDIR CARGO_BIN_NAME OUT_DIR
# Hermetic: the functions see the parent environment too, so nothing from the caller's shell
# may leak into them; their whole configuration comes from what the script writes.
unset STRIPE_SECRET_KEY STRIPE_PUBLISHABLE_KEY STRIPE_WEBHOOK_SECRET STRIPE_API_BASE SITE_URL \
  DATABASE_URL CHECKOUT_UI_MODE STRIPE_MAX_RETRIES DISCOUNT_RESPONSE_FLOOR_MS \
  RATE_LIMIT_APPLY_DISCOUNT RATE_LIMIT_CREATE_CHECKOUT RATE_LIMIT_CHECKOUT_STATUS VERCEL_ENV \
  EMULATOR_PORT EMULATOR_WEBHOOK_URL EMULATOR_WEBHOOK_SECRET EMULATOR_PUBLIC_URL \
  EMULATOR_PROMOTION_CODES VERCEL_DEV_PORT PORT

# @vercel/rust starts with `cargo metadata`, which needs the crates of every platform in the
# lock file. Without them vercel dev falls back silently to a mode that cannot serve these
# functions (and vercel build fails), so say it plainly here instead.
if ! meta_err=$(cargo metadata --manifest-path "$repo/Cargo.toml" --format-version 1 2>&1 >/dev/null); then
  echo "$meta_err" | tail -n 5 >&2
  echo "cargo metadata fails offline: run \`cargo fetch\` once (@vercel/rust needs every crate of Cargo.lock)" >&2
  exit 1
fi

# copy_tree DEST: the working tree (tracked and untracked-but-not-ignored files, no target/ or
# node_modules/) copied to DEST, timestamps kept so Cargo's fingerprints still match the
# repo's own builds; no .env or SQLite file of the developer's comes along.
copy_tree() {
  local dest=$1
  mkdir -p "$dest"
  (
    cd "$repo"
    git ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' f; do
          case "$f" in node_modules/* | */node_modules/* | target/*) continue ;; esac
          [[ -f $f ]] && printf '%s\0' "$f"
        done \
      | xargs -0 cp --parents --preserve=mode,timestamps -t "$dest"
    [[ -f $dest/Cargo.lock ]] || cp --preserve=mode,timestamps Cargo.lock "$dest/"
  )
  rm -rf "$dest/.env" "$dest"/*.sqlite3 "$dest"/*.sqlite3-* "$dest/.vercel"
}
