//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test file uses its own subset

use std::future::Future;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Panic with a clear message unless `node` runs: these tests exercise real Node.js,
/// and a missing `node` must fail the run (CI installs nodejs), never skip it.
pub(crate) fn require_node() {
    static CHECKED: OnceLock<Result<String, String>> = OnceLock::new();
    let version = CHECKED.get_or_init(|| match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(format!("`node --version` failed: {}", out.status)),
        Err(e) => Err(format!("cannot run `node`: {e}")),
    });
    if let Err(e) = version {
        panic!("these tests need Node.js on PATH ({e}); install nodejs (v20+) and rerun");
    }
}

/// Run `fut`, failing the test if it takes longer than `secs` (a hang is a failure).
pub(crate) async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no result within {secs} s (hang)"),
    }
}
