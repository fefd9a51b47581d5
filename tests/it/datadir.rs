//! A data directory pushmon cannot use is named, with what to do
//! (`docs/operations.md`, "The data directory"): a file in its place, a directory the
//! server's user cannot write, and (for `pushmon check` and a second server) a store
//! a running server holds. Each exits 1 with one clear line on stderr, never an
//! `os error` or `FjallError` alone. The unwritable cases run the real binary as
//! `nobody` (the tests run as root, which no permission bit stops).

use std::os::unix::fs::PermissionsExt as _;

use tempfile::TempDir;

use crate::durability::{check, check_wrapped, serve_until_exit, serve_wrapped_until_exit};
use crate::support::ServerProcess;

/// Runs the binary as `nobody` (uid 65534) with no supplementary groups.
const AS_NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

fn assert_clear(stderr: &str, expected: &[&str]) {
    for text in expected {
        assert!(stderr.contains(text), "{text:?} missing from:\n{stderr}");
    }
    for raw in ["os error", "FjallError", "Os {"] {
        assert!(!stderr.contains(raw), "{raw:?} in:\n{stderr}");
    }
}

/// A temp dir that `nobody` may enter (tempfile makes them 0700).
fn open_temp_dir() -> TempDir {
    let temp = TempDir::new().unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    temp
}

#[tokio::test]
async fn a_file_in_place_of_the_data_directory_is_named() {
    let temp = TempDir::new().unwrap();
    let file = temp.path().join("data");
    std::fs::write(&file, "not a directory").unwrap();
    let path = file.display().to_string();

    let (code, stderr) = serve_until_exit(&file, &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_clear(&stderr, &[&path, "is not a directory", "--data-dir"]);
    let (code, _, stderr) = check(&file);
    assert_eq!(code, Some(1), "{stderr}");
    assert_clear(&stderr, &[&path, "is not a directory", "--data-dir"]);
}

#[tokio::test]
async fn a_data_directory_the_servers_user_cannot_write_says_which_user_and_what_to_do() {
    let temp = open_temp_dir();
    // Exists, owned by root, mode 0755: nobody cannot write in it.
    let existing = temp.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    let (code, stderr) = serve_wrapped_until_exit(&AS_NOBODY, &existing, &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    let path = existing.display().to_string();
    assert_clear(
        &stderr,
        &[
            &format!("cannot write to the data directory {path}"),
            "user id 65534",
            "chown -R 65534",
        ],
    );

    // Missing, in a directory nobody cannot write: it cannot be created.
    let missing = existing.join("data");
    let (code, stderr) = serve_wrapped_until_exit(&AS_NOBODY, &missing, &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_clear(
        &stderr,
        &[
            &format!("cannot create the data directory {}", missing.display()),
            "user id 65534",
        ],
    );

    // A store made by root, opened by nobody.
    let store = temp.path().join("store");
    let (code, stderr) = serve_until_exit(&store, &["--history-sweep-seconds", "x"]).await;
    assert_eq!(
        code,
        Some(2),
        "an invalid flag stops before the store: {stderr}"
    );
    let server = ServerProcess::start(&store, &[]).await;
    server.sigterm().await;
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, stderr) = serve_wrapped_until_exit(&AS_NOBODY, &store, &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_clear(
        &stderr,
        &["cannot write to the data directory", "user id 65534"],
    );
    let (code, _, stderr) = check_wrapped(&AS_NOBODY, &store);
    assert_eq!(code, Some(1), "{stderr}");
    assert_clear(&stderr, &["user id 65534"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_or_a_second_server_on_a_store_in_use_says_a_server_holds_it() {
    let temp = TempDir::new().unwrap();
    let server = ServerProcess::start(temp.path(), &[]).await;

    let (code, _, stderr) = check(temp.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert_clear(
        &stderr,
        &[
            "in use by another process",
            "running pushmon server",
            "stop that server first",
        ],
    );
    let (code, stderr) = serve_until_exit(temp.path(), &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_clear(
        &stderr,
        &["in use by another process", "two servers never share"],
    );

    // The running server was not disturbed.
    server.create_monitor("still here", 60).await;
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "{log}");
    let (code, stdout, stderr) = check(temp.path());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}
