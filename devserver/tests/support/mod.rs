//! What the dev server's test binaries share: the repository's root, a free port, and the
//! real `dev` binary as a child process (offline: its emulator, a temporary SQLite store).
//!
//! Each test binary uses part of it, so unused items are allowed here.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's root (the dev server's working directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("devserver/ has a parent").to_path_buf()
}

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// The dev server as a child process; killed (and its store deleted) on drop, panics included.
pub struct DevServer {
    child: Child,
    /// The shop's origin, `http://localhost:PORT` (its `SITE_URL`).
    pub url: String,
    /// The Stripe emulator's base URL (its `/_emulator/outbox.json` and request log).
    pub emulator: String,
    dir: PathBuf,
}

impl DevServer {
    /// Starts `dev` offline whatever the environment or a developer's `.env` says (the process
    /// environment wins over `.env`, and an empty value counts as unset), with `env` on top,
    /// and waits until `GET /api/products` answers. A port picked free can be taken by someone
    /// else before the server binds it: a few attempts make that harmless.
    pub async fn start(name: &str, env: &[(&str, &str)]) -> DevServer {
        let mut last_err = String::new();
        for _ in 0..3 {
            match DevServer::try_start(name, env).await {
                Ok(s) => return s,
                Err(e) => last_err = e,
            }
        }
        panic!("dev server did not start: {last_err}");
    }

    async fn try_start(name: &str, env: &[(&str, &str)]) -> Result<DevServer, String> {
        let (port, emu_port) = (free_port(), free_port());
        let dir = std::env::temp_dir().join(format!("dev-{name}-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("dev.log")).map_err(|e| e.to_string())?;
        let url = format!("http://localhost:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_dev"));
        command
            .current_dir(repo_root())
            .env("PORT", port.to_string())
            .env("EMULATOR_PORT", emu_port.to_string())
            .env("DATABASE_URL", format!("sqlite://{}", dir.join("store.sqlite3").display()))
            .env("STRIPE_SECRET_KEY", "")
            .env("STRIPE_API_BASE", "")
            .env("SITE_URL", &url)
            .env("VERCEL", "")
            .env("VERCEL_ENV", "");
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", env!("CARGO_BIN_EXE_dev")))?;
        let mut server = DevServer { child, url, emulator: format!("http://127.0.0.1:{emu_port}"), dir };
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("dev server exited with {status}:\n{}", server.log()));
            }
            let ok = client
                .get(format!("{}/api/products", server.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!("no answer to GET /api/products within 30 s:\n{}", server.log()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the dev server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dev.log")).unwrap_or_default()
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
