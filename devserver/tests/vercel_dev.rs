//! The functions under the real `vercel dev --local` (pinned Vercel CLI from
//! tests/vercel/package.json), offline against the standalone emulator: runs
//! `tests/vercel/run.sh`, which prints every check, and requires it to pass.
//!
//! Needs `cd tests/vercel && npm install` once. Without it the test is skipped, except
//! in CI (env `CI` set and not "false"), where a missing CLI is a failure.

use std::path::PathBuf;
use std::process::Command;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

#[test]
fn vercel_dev_local_end_to_end() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cli = repo.join("tests/vercel/node_modules/.bin/vercel");
    if !cli.exists() {
        if in_ci() {
            panic!("vercel CLI not installed (cd tests/vercel && npm install): required when CI is set");
        }
        println!("SKIP: vercel CLI not installed (cd tests/vercel && npm install)");
        return;
    }
    // stdout/stderr are inherited: the script's progress and per-check lines stream as it runs.
    let status = Command::new("bash")
        .arg(repo.join("tests/vercel/run.sh"))
        .current_dir(&repo)
        .status()
        .expect("could not run bash tests/vercel/run.sh");
    assert!(status.success(), "tests/vercel/run.sh failed ({status}); see its output above");
}
