//! Marks the test suites whose tools this machine lacks as ignored, with the reason (see
//! tests/support/tools.rs). Changes nothing in the library or the function binaries.

#[path = "tests/support/tools.rs"]
mod tools;

fn main() {
    tools::emit(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
}
