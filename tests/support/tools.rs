//! Which optional test tools this machine has, for the build scripts that mark the suites
//! needing them `#[ignore = "needs ..."]` (so `cargo test` says what it skipped), and the
//! one `in_ci()` the tests share. Under CI every tool counts as present: a suite whose tool
//! is missing then runs and fails instead of being skipped.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

/// Whether the `CI` variable is set to anything but "", "0" or "false".
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The optional tools, each with the cfg name a build script emits when it is there.
pub fn detect(repo: &Path) -> Vec<(&'static str, bool)> {
    let oracle = repo.join("tests/oracle/node_modules");
    let node = runs("node", &["--version"]);
    let chromium: std::path::PathBuf =
        std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), Into::into);
    vec![
        ("has_postgres", std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())),
        ("has_pgbouncer", std::env::var("TEST_PGBOUNCER_URL").is_ok_and(|u| !u.is_empty())),
        ("has_node_stripe", node && oracle.join("stripe/package.json").exists()),
        ("has_python_stripe", runs("python3", &["-c", "import stripe"])),
        ("has_chromium", node && oracle.join("playwright-core/package.json").exists() && Path::new(&chromium).exists()),
        ("has_vercel_cli", repo.join("tests/vercel/node_modules/.bin/vercel").exists()),
    ]
}

/// What a build script prints: every cfg declared, the present ones (or all, under CI) set,
/// and when to look again.
pub fn emit(repo: &Path) {
    let ci = in_ci();
    for (cfg, present) in detect(repo) {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if present || ci {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    for var in ["CI", "TEST_DATABASE_URL", "TEST_PGBOUNCER_URL", "CHROMIUM", "PATH"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    for dir in ["tests/oracle", "tests/vercel"] {
        println!("cargo::rerun-if-changed={}", repo.join(dir).display());
    }
    println!("cargo::rerun-if-changed=/usr/bin");
}
