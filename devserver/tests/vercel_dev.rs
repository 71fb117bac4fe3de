//! The functions under the real `vercel dev --local` (pinned Vercel CLI from
//! tests/vercel/package.json), offline against the standalone emulator: runs
//! `tests/vercel/run.sh`, which prints every check, and requires it to pass.
//!
//! Needs `cd tests/vercel && npm install` once. Without it `cargo test` lists the test as
//! ignored with that reason (devserver/build.rs), except in CI, where a missing CLI fails it.

use std::path::PathBuf;
use std::process::Command;

#[test]
#[cfg_attr(not(has_vercel_cli), ignore = "needs the pinned Vercel CLI: cd tests/vercel && npm install")]
fn vercel_dev_local_end_to_end() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cli = repo.join("tests/vercel/node_modules/.bin/vercel");
    assert!(cli.exists(), "vercel CLI not installed (cd tests/vercel && npm install)");
    // stdout/stderr are inherited: the script's progress and per-check lines stream as it runs.
    let status = Command::new("bash")
        .arg(repo.join("tests/vercel/run.sh"))
        .current_dir(&repo)
        .status()
        .expect("could not run bash tests/vercel/run.sh");
    assert!(status.success(), "tests/vercel/run.sh failed ({status}); see its output above");
}
