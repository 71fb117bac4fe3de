#!/usr/bin/env bash
# The deploy build, offline: the pinned Vercel CLI's `vercel build` (tests/vercel/package.json)
# over a scratch copy of the working tree, then a check of the Build Output API tree it writes
# (.vercel/output), which is what `vercel deploy --prebuilt` uploads and what Vercel's own
# builders produce:
#   - one function per api/*.rs (no more), each an `executable` Rust function whose binary is
#     a Linux ELF executable, with maxDuration and memory from vercel.json;
#   - every file of public/ among the static files, byte for byte;
#   - the headers and crons of vercel.json in config.json, and per path the headers its routes
#     give: the storefront (/ and /index.html) exactly one CSP, Stripe's for Stripe.js and
#     embedded Checkout; every other path exactly one, the strict 'self' one; all paths the
#     other security headers.
#
#   (cd tests/vercel && npm install)   # once
#   bash tests/vercel/build.sh
#
# No login and no network: a local .vercel/project.json holds the project settings `vercel
# build` would otherwise pull. VERCEL_BUILD_IMAGE=1 makes @vercel/rust build the way it does
# on Vercel's build machines (`cargo build --release --bin NAME`); without it a local build
# cross-compiles with `cargo zigbuild`, which needs zig. The release build goes to the repo's
# target/ (CARGO_TARGET_DIR), so later runs are quick.
# Env: VERCEL_BUILD_KEEP=1 keeps the temp dir (copy, output, log) for inspection.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/vercel-build.XXXXXX")"
cleanup() {
  local status=$?
  if [[ $status -ne 0 || ${VERCEL_BUILD_KEEP:-} = 1 ]]; then
    echo "---- last lines of vercel build's log ----" >&2
    tail -n 60 "$tmp/build.log" >&2 2>/dev/null || true
  fi
  if [[ ${VERCEL_BUILD_KEEP:-} = 1 ]]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

work="$tmp/repo"
copy_tree "$work"
mkdir -p "$work/.vercel"
# What `vercel link` + `vercel pull` would write: ids (never sent anywhere by `vercel build`)
# and the project settings of an import with no framework preset, as the README describes.
cat > "$work/.vercel/project.json" <<'JSON'
{
  "projectId": "prj_offline_build_check",
  "orgId": "team_offline_build_check",
  "settings": {
    "framework": null,
    "buildCommand": null,
    "installCommand": null,
    "outputDirectory": null,
    "devCommand": null,
    "rootDirectory": null,
    "nodeVersion": "22.x"
  }
}
JSON

# What this checks is the Build Output tree, not the machine code in it: the release profile's
# fat LTO and single codegen unit (over a minute per function on a 2-core machine, 11 minutes
# for the seven) are switched off here, and so is optimisation (`-C opt-level=0` comes after
# the profile's own opt-levels, so it wins for every crate: the release deps compile about
# twice as fast). Vercel builds with Cargo.toml's profile as it is, and bench/run.sh measures
# that build.
export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 RUSTFLAGS="-C opt-level=0"
echo "vercel build (release build of every function, without LTO or optimisation, CARGO_TARGET_DIR=$target) ..."
started=$SECONDS
if ! (cd "$work" && VERCEL_BUILD_IMAGE=1 "$vercel" build --prod --yes --global-config "$tmp/vercel-global") \
  >"$tmp/build.log" 2>&1 </dev/null; then
  echo "vercel build failed" >&2
  exit 1
fi
echo "built in $((SECONDS - started))s"

python3 - "$work" <<'PY'
import json, pathlib, sys

work = pathlib.Path(sys.argv[1])
out = work / ".vercel" / "output"
vercel_json = json.loads((work / "vercel.json").read_text())
passed = failed = 0

def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}")
        if detail:
            print(f"     {str(detail)[:600]}")

# Functions: one per api/*.rs, with its settings from vercel.json.
settings = vercel_json["functions"]["api/**/*.rs"]
entries = sorted(p.stem for p in (work / "api").glob("*.rs"))
funcs = sorted(p.name[: -len(".func")] for p in (out / "functions" / "api").glob("*.func"))
binaries = {}
check(entries and funcs == entries, f"one function per api/*.rs ({len(entries)}: {', '.join(entries)})",
      f"functions: {funcs}")
for name in entries:
    func = out / "functions" / "api" / f"{name}.func"
    try:
        cfg = json.loads((func / ".vc-config.json").read_text())
    except (OSError, ValueError) as e:
        check(False, f"api/{name}: .vc-config.json", e)
        continue
    # The binary stays where cargo built it: `filePathMap` names it, relative to the project
    # root (what `vercel deploy --prebuilt` uploads); an inlined copy sits in the function.
    handler = cfg.get("handler", "?")
    mapped = cfg.get("filePathMap", {}).get(handler)
    binary = (work / mapped).resolve() if mapped else func / handler
    binaries[name] = binary
    head = binary.read_bytes()[:4] if binary.is_file() else b""
    check(cfg.get("runtime") == "executable" and cfg.get("runtimeLanguage") == "rust"
          and head == b"\x7fELF" and binary.stat().st_mode & 0o111,
          f"api/{name}: executable Rust function, ELF binary {binary.name}"
          f" ({binary.stat().st_size // 1024 if head else 0} KiB)", cfg)
    check(cfg.get("maxDuration") == settings["maxDuration"] and cfg.get("memory") == settings["memory"],
          f"api/{name}: maxDuration {settings['maxDuration']}, memory {settings['memory']} (vercel.json)",
          {k: cfg.get(k) for k in ("maxDuration", "memory")})

# Built by the official builder, in release mode (what deploys run).
builds = json.loads((out / "builds.json").read_text()).get("builds", [])
rust = sorted(pathlib.Path(b["src"]).stem for b in builds if b.get("use") == "@vercel/rust")
check(rust == entries, "every api/*.rs built by the official @vercel/rust builder",
      [(b.get("src"), b.get("use")) for b in builds])
check(binaries and all("/release/" in str(b) for b in binaries.values()),
      "every function binary from the release profile", binaries)

# Static files: all of public/, unchanged.
public = sorted(p.relative_to(work / "public") for p in (work / "public").rglob("*") if p.is_file())
static = out / "static"
missing = [str(p) for p in public if not (static / p).is_file()]
changed = [str(p) for p in public if (static / p).is_file()
           and (static / p).read_bytes() != (work / "public" / p).read_bytes()]
check(public and not missing and not changed, f"static files: all {len(public)} of public/, unchanged",
      f"missing {missing}, changed {changed}")

# Routing config: vercel.json's headers and crons.
try:
    config = json.loads((out / "config.json").read_text())
except (OSError, ValueError) as e:
    config = {}
    check(False, "config.json", e)
check(config.get("version") == 3, "config.json: Build Output API version 3", config.get("version"))
routes = config.get("routes", [])
for rule in vercel_json.get("headers", []):
    want = {h["key"].lower(): h["value"] for h in rule["headers"]}
    got = {}
    for r in routes:
        if isinstance(r, dict) and isinstance(r.get("headers"), dict):
            hs = {k.lower(): v for k, v in r["headers"].items()}
            if all(hs.get(k) == v for k, v in want.items()):
                got = r
                break
    check(bool(got), f"headers for {rule['source']}: all {len(want)} from vercel.json ({', '.join(want)})",
          json.dumps(routes)[:600])
    check(bool(got) and got.get("continue") is True, f"headers for {rule['source']}: a `continue` route",
          got)

# The headers each path ends up with: every header route (`continue`) whose `src` matches, in
# order. A key set by two matching routes would be resolved by the edge (a later route
# replaces it) or could be sent twice; either way the paths below must not need that rule:
# each gets exactly one Content-Security-Policy from one route, so what the browser enforces
# does not depend on how duplicates are merged.
import re
header_routes = [r for r in routes if isinstance(r, dict) and r.get("continue") and isinstance(r.get("headers"), dict)]
def headers_for(path):
    got = []
    for r in header_routes:
        if re.search(r["src"], path):  # case-sensitive, as Vercel matches vercel.json's headers
            got += [(k.lower(), v) for k, v in r["headers"].items()]
    return got

def directive(csp, name):
    for d in csp.split(";"):
        parts = d.split()
        if parts and parts[0] == name:
            return set(parts[1:])
    return None

csps = {v for r in vercel_json["headers"] for h in r["headers"] if h["key"].lower() == "content-security-policy"
        for v in [h["value"]]}
stripe_csp = [c for c in csps if "https://js.stripe.com" in (directive(c, "script-src") or set())]
strict_csp = [c for c in csps if directive(c, "script-src") == {"'self'"}]
check(len(stripe_csp) == 1 and len(strict_csp) == 1 and len(csps) == 2,
      "vercel.json: one CSP for Stripe.js + embedded Checkout, one strict 'self' CSP", csps)
if stripe_csp:
    # Stripe's CSP for Stripe.js and for (embedded) Checkout (docs.stripe.com/security/guide).
    want = {
        "script-src": {"'self'", "https://js.stripe.com", "https://*.js.stripe.com", "https://checkout.stripe.com"},
        "frame-src": {"https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com",
                      "https://checkout.stripe.com"},
        "connect-src": {"'self'", "https://api.stripe.com", "https://checkout.stripe.com"},
        "img-src": {"'self'", "data:", "https://*.stripe.com"},
        "style-src": {"'self'"},
        "frame-ancestors": {"'none'"},
        "object-src": {"'none'"},
        "base-uri": {"'none'"},
        "form-action": {"'self'"},
    }
    got = {k: directive(stripe_csp[0], k) for k in want}
    check(got == want and "unsafe" not in stripe_csp[0],
          "storefront CSP: Stripe's directives for Stripe.js and Checkout, nothing inline or eval'd",
          {k: sorted(v or []) for k, v in got.items() if v != want[k]})

others = {"strict-transport-security", "x-content-type-options", "referrer-policy", "x-frame-options",
          "permissions-policy"}
all_values = {h["key"].lower(): h["value"] for r in vercel_json["headers"] for h in r["headers"]}
storefront = ["/", "/index.html"]
elsewhere = ["/admin.html", "/admin.js", "/success.html", "/cancel.html", "/app.js", "/common.js", "/style.css",
             "/favicon.svg", "/no-such-page", "/index.html/", "/INDEX.HTML", "/x/index.html", "/index.htm",
             "/api/products"]
for path in storefront + elsewhere:
    hs = headers_for(path)
    csp = [v for k, v in hs if k == "content-security-policy"]
    want_csp = (stripe_csp if path in storefront else strict_csp)[:1]
    check(csp == want_csp and want_csp,
          f"{path}: exactly one CSP, the {'Stripe' if path in storefront else 'strict'} one", csp)
    keys = [k for k, _ in hs]
    check(all(keys.count(k) == 1 and dict(hs)[k] == all_values[k] for k in others),
          f"{path}: HSTS, nosniff, Referrer-Policy, X-Frame-Options, Permissions-Policy, once each", hs)

check(config.get("crons") == vercel_json.get("crons"), f"crons: {vercel_json.get('crons')}",
      config.get("crons"))

print(f"vercel build: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
