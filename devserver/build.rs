//! Marks the browser and `vercel dev` tests ignored, with the reason, on a machine without
//! Chromium or the Vercel CLI (see tests/support/tools.rs).

#[path = "../tests/support/tools.rs"]
mod tools;

fn main() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    tools::emit(here.parent().unwrap_or(here));
}
