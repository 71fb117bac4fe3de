//! The functions under the pinned Vercel CLI (tests/vercel/package.json), offline:
//! - `vercel_dev_local_end_to_end` runs `tests/vercel/run.sh`: `vercel dev --local` against the
//!   standalone emulator, every function, a checkout and a signed webhook;
//! - `vercel_build_output` runs `tests/vercel/build.sh`: the deploy build (`vercel build` with a
//!   local `.vercel/project.json`, no login) and a check of `.vercel/output` (one function per
//!   `api/*.rs` with its vercel.json settings, the static files of public/, vercel.json's
//!   headers and crons).
//!
//! Each script prints every check and must pass. Needs `cd tests/vercel && npm install` once.
//! Without it `cargo test` lists both as ignored with that reason (devserver/build.rs), except
//! in CI, where a missing CLI fails them.

use std::path::PathBuf;
use std::process::Command;

/// Runs `bash tests/vercel/{script}` from the repo root.
fn run(script: &str) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cli = repo.join("tests/vercel/node_modules/.bin/vercel");
    assert!(cli.exists(), "vercel CLI not installed (cd tests/vercel && npm install)");
    // stdout/stderr are inherited: the script's progress and per-check lines stream as it runs.
    let status = Command::new("bash")
        .arg(repo.join("tests/vercel").join(script))
        .current_dir(&repo)
        .status()
        .unwrap_or_else(|e| panic!("could not run bash tests/vercel/{script}: {e}"));
    assert!(status.success(), "tests/vercel/{script} failed ({status}); see its output above");
}

#[test]
#[cfg_attr(not(has_vercel_cli), ignore = "needs the pinned Vercel CLI: cd tests/vercel && npm install")]
fn vercel_dev_local_end_to_end() {
    run("run.sh");
}

#[test]
#[cfg_attr(not(has_vercel_cli), ignore = "needs the pinned Vercel CLI: cd tests/vercel && npm install")]
fn vercel_build_output() {
    run("build.sh");
}
