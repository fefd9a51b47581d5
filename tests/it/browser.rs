//! The dashboard in a real headless Chromium (`tests/browser/dashboard.mjs`, driven by
//! the npm package playwright-core with Debian's `chromium`): sign in, create a channel
//! and a monitor, push, watch it turn up and then down live, pause it, rotate its
//! token, make a badge and a status page, sign out; a read key changes nothing; no
//! console errors. Screenshots of each page go to `target/browser-artifacts/`.
//!
//! What it needs is installed by `scripts/test.sh` (chromium from apt, `npm ci` in
//! `tests/browser/`). Missing, the test fails and says so: it never skips.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_TOKEN, expect_json, spawn_app};

/// How long the whole browser scenario may take.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(240);

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Fails, naming what is missing and how to get it.
fn require_browser_tools(browser_dir: &Path) {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|output| output.status.success()),
        "node is missing: install Node.js (scripts/test.sh does), then run `npm ci` in tests/browser"
    );
    assert!(
        Path::new(&chromium()).exists(),
        "{} is missing: `apt-get install chromium` (scripts/test.sh does)",
        chromium()
    );
    assert!(
        browser_dir
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is missing: run `npm ci` in {} (scripts/test.sh does)",
        browser_dir.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_dir = repository.join("tests/browser");
    require_browser_tools(&browser_dir);
    let app = spawn_app().await;
    let key = expect_json(
        app.api(Method::POST, "/api/keys")
            .json(&json!({"name": "browser test", "scope": "read"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let artifacts = repository.join("target/browser-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    let run = tokio::process::Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&browser_dir)
        .env("BASE_URL", &app.base_url)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("READ_KEY", key["key"].as_str().unwrap())
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", chromium())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCENARIO_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("the browser scenario took longer than {SCENARIO_TIMEOUT:?}"))
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser scenario failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("ok: "), "{stdout}\n{stderr}");
    let screenshots = std::fs::read_dir(&artifacts)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "png"))
        })
        .count();
    assert!(
        screenshots >= 10,
        "only {screenshots} screenshots in {}",
        artifacts.display()
    );
}
