//! The user reference in `docs/` keeps up with the code: every flag the real binary
//! prints, every client command, every `PUSHMON_*` variable, every route, every metric
//! is documented, the router and the hand-kept `ROUTES` table of route labels agree
//! both ways, and nothing in the repository points outside it. Each test names exactly
//! what is missing.
//!
//! The facts are read where they are declared: the binary's `--help`, the source text
//! (routes, metric names), a live `/metrics`. When code moves, update the paths below.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::spawn_app;

/// Files or directories (searched for `.rs` files) naming every `PUSHMON_*` variable:
/// the settings table (`cli::setting`) and their resolution.
const ENV_VAR_SOURCES: &[&str] = &["src/cli.rs", "src/config.rs"];
/// Files or directories whose `.route("…")` calls register every route.
const ROUTE_SOURCES: &[&str] = &["src/http", "src/web", "src/declare"];
/// The file holding `const ROUTES: &[&str] = &[…];`, the route templates of the
/// request metrics' `route` label.
const ROUTES_TABLE_SOURCE: &str = "src/http/mod.rs";
/// Files declaring metric names as `pub const …: &str = "pushmon_…";`.
const METRIC_CONST_SOURCES: &[&str] = &["src/prometheus.rs"];
/// Files writing the per-monitor `pushmon_…` families into `/metrics` by hand.
const METRIC_FAMILY_SOURCES: &[&str] = &["src/http/ops.rs"];

const CONFIGURATION_DOC: &str = "docs/configuration.md";
/// Every client command (all but `SERVER_COMMANDS`), its flags and variables.
const CLI_DOC: &str = "docs/cli.md";
/// The commands `CONFIGURATION_DOC` documents; every other one is the client's.
const SERVER_COMMANDS: &[&str] = &["serve", "check", "cluster"];
/// Files or directories naming every `PUSHMON_*` variable the client commands read.
const CLIENT_ENV_VAR_SOURCES: &[&str] = &["src/cli/client_args.rs", "src/client"];
/// Between them, every route is documented.
const ROUTE_DOCS: &[&str] = &["docs/api.md", "docs/push.md", "docs/dashboard.md"];
const METRICS_DOC: &str = "docs/metrics.md";

/// Top-level paths of the repository the reference check skips (build output, git's
/// own files).
const NOT_IN_REPOSITORY: &[&str] = &["target", ".git"];

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The text of a file, by its path in the repository; `constant` names where that
/// path is set, for the message when the file has moved.
fn read(path: &str, constant: &str) -> String {
    std::fs::read_to_string(repository().join(path)).unwrap_or_else(|error| {
        panic!("cannot read {path} ({error}); if it moved, update {constant} in tests/it/docs.rs")
    })
}

/// Every `.rs` file under each of `roots` (files or directories), with its path in
/// the repository and its text.
fn rust_sources(roots: &[&str], constant: &str) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for root in roots {
        let path = repository().join(root);
        if path.is_dir() {
            let mut found = Vec::new();
            walk(&path, &mut found);
            for file in found {
                if file.extension().is_some_and(|extension| extension == "rs") {
                    let relative = relative(&file);
                    let text = read(&relative, constant);
                    files.push((relative, text));
                }
            }
        } else {
            files.push(((*root).to_owned(), read(root, constant)));
        }
    }
    files
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repository())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Whether `doc` names `item` as a whole word: not as part of a longer name, where
/// `continues` says which characters would make it longer.
fn mentions(doc: &str, item: &str, continues: impl Fn(char) -> bool) -> bool {
    doc.match_indices(item).any(|(at, _)| {
        let before = doc[..at].chars().next_back();
        let after = doc[at + item.len()..].chars().next();
        !before.is_some_and(&continues) && !after.is_some_and(&continues)
    })
}

/// Fails listing each of `items` that `doc` (named `doc_name`) does not mention.
fn assert_documented(
    what: &str,
    items: &BTreeSet<String>,
    docs: &[(&str, String)],
    continues: impl Fn(char) -> bool + Copy,
) {
    let missing: Vec<&String> = items
        .iter()
        .filter(|item| !docs.iter().any(|(_, text)| mentions(text, item, continues)))
        .collect();
    let names: Vec<&str> = docs.iter().map(|(name, _)| *name).collect();
    assert!(
        missing.is_empty(),
        "{} {what} not documented in {}: {}",
        missing.len(),
        names.join(" or "),
        missing
            .iter()
            .map(|item| item.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The `--long-flags` in the help text of `pushmon <args>`.
fn long_flags(args: &[&str]) -> BTreeSet<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
        .args(args)
        .output()
        .expect("run pushmon");
    assert!(
        output.status.success(),
        "pushmon {args:?} failed: {output:?}"
    );
    let help = String::from_utf8(output.stdout).expect("help is UTF-8");
    let mut flags = BTreeSet::new();
    for (at, _) in help.match_indices("--") {
        // Inside a longer word (`a--b`, `---`): not a flag.
        if help[..at].chars().next_back().is_some_and(is_flag_char) {
            continue;
        }
        let name: String = help[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            flags.insert(format!("--{name}"));
        }
    }
    assert!(
        !flags.is_empty(),
        "no long flag in the help of {args:?}:\n{help}"
    );
    flags
}

fn is_flag_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

#[test]
fn every_flag_and_environment_variable_is_in_the_configuration_reference() {
    let mut flags = BTreeSet::new();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["cluster", "release", "--help"],
    ] {
        flags.extend(long_flags(args));
    }
    for expected in ["--listen", "--data-dir", "--help"] {
        assert!(
            flags.contains(expected),
            "the help scan missed {expected}: {flags:?}"
        );
    }
    let doc = vec![(
        CONFIGURATION_DOC,
        read(CONFIGURATION_DOC, "CONFIGURATION_DOC"),
    )];
    assert_documented("flags", &flags, &doc, is_flag_char);

    let variables = variables_in(&rust_sources(ENV_VAR_SOURCES, "ENV_VAR_SOURCES"));
    assert!(
        variables.contains("PUSHMON_LISTEN"),
        "no PUSHMON_LISTEN in {ENV_VAR_SOURCES:?}: if the variables moved, update ENV_VAR_SOURCES"
    );
    assert_documented("environment variables", &variables, &doc, |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
    });
}

/// The `PUSHMON_*` variables named in `sources`.
fn variables_in(sources: &[(String, String)]) -> BTreeSet<String> {
    let mut variables = BTreeSet::new();
    for (_, text) in sources {
        for (at, _) in text.match_indices("PUSHMON_") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // `PUSHMON_*` in prose is the family, not a variable.
            if name.len() > "PUSHMON_".len() {
                variables.insert(name);
            }
        }
    }
    variables
}

/// The subcommands the help of `pushmon <args>` lists under `Commands:`, but `help`.
fn subcommands(args: &[&str]) -> Vec<String> {
    let mut with_help = args.to_vec();
    with_help.push("--help");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
        .args(&with_help)
        .output()
        .expect("run pushmon");
    assert!(
        output.status.success(),
        "pushmon {with_help:?} failed: {output:?}"
    );
    let help = String::from_utf8(output.stdout).expect("help is UTF-8");
    let Some(start) = help.find("Commands:\n") else {
        return Vec::new();
    };
    help[start + "Commands:\n".len()..]
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_client_command_flag_and_variable_is_in_the_cli_reference() {
    // Every command path below `pushmon` but the server's: ["run"], ["monitor", "list"] …
    let mut pending: Vec<Vec<String>> = subcommands(&[])
        .into_iter()
        .filter(|name| !SERVER_COMMANDS.contains(&name.as_str()))
        .map(|name| vec![name])
        .collect();
    let mut commands = BTreeSet::new();
    let mut flags = BTreeSet::new();
    while let Some(path) = pending.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let mut help_args = args.clone();
        help_args.push("--help");
        flags.extend(long_flags(&help_args));
        for sub in subcommands(&args) {
            let mut longer = path.clone();
            longer.push(sub);
            pending.push(longer);
        }
        commands.insert(format!("pushmon {}", path.join(" ")));
    }
    for expected in [
        "pushmon run",
        "pushmon monitor rotate-token",
        "pushmon key revoke",
    ] {
        assert!(
            commands.contains(expected),
            "the help walk missed {expected}: {commands:?}"
        );
    }
    for expected in ["--tail-bytes", "--token-file", "--no-channels"] {
        assert!(
            flags.contains(expected),
            "the help scan missed {expected}: {flags:?}"
        );
    }
    let doc = vec![(CLI_DOC, read(CLI_DOC, "CLI_DOC"))];
    assert_documented("commands", &commands, &doc, is_flag_char);
    assert_documented("flags", &flags, &doc, is_flag_char);

    let variables = variables_in(&rust_sources(
        CLIENT_ENV_VAR_SOURCES,
        "CLIENT_ENV_VAR_SOURCES",
    ));
    assert!(
        variables.contains("PUSHMON_PUSH_TOKEN"),
        "no PUSHMON_PUSH_TOKEN in {CLIENT_ENV_VAR_SOURCES:?}: if the variables moved, update \
         CLIENT_ENV_VAR_SOURCES"
    );
    assert_documented("environment variables", &variables, &doc, |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
    });
}

/// The string literals in `text` (one list's body), skipping `//` comments.
fn string_literals_of_list(text: &str) -> Vec<String> {
    let mut literals = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(open) = rest.find('"') {
            let after = &rest[open + 1..];
            let close = after
                .find('"')
                .expect("a string literal closes on its line");
            literals.push(after[..close].to_owned());
            rest = &after[close + 1..];
        }
    }
    literals
}

/// The entries of the `ROUTES` table.
fn routes_table() -> BTreeSet<String> {
    let text = read(ROUTES_TABLE_SOURCE, "ROUTES_TABLE_SOURCE");
    let start = text.find("const ROUTES: &[&str] = &[").unwrap_or_else(|| {
        panic!(
            "no `const ROUTES: &[&str] = &[` in {ROUTES_TABLE_SOURCE}; update ROUTES_TABLE_SOURCE"
        )
    });
    let body = &text[start..];
    let open = body.find("&[").expect("the table opens") + 2;
    let close = body.find("];").expect("the table closes");
    let entries = string_literals_of_list(&body[open..close]);
    let table: BTreeSet<String> = entries.iter().cloned().collect();
    assert_eq!(
        table.len(),
        entries.len(),
        "ROUTES has duplicates: {entries:?}"
    );
    table
}

/// Every path registered with `.route("…")`, with where it is registered.
pub(crate) fn registered_routes() -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (file, text) in rust_sources(ROUTE_SOURCES, "ROUTE_SOURCES") {
        // Comment lines may show `.route(` in examples; code is what registers routes.
        let code: String = text
            .lines()
            .map(|line| {
                if line.trim_start().starts_with("//") {
                    ""
                } else {
                    line
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        for (at, _) in code.match_indices(".route(") {
            let line = code[..at].lines().count();
            let argument = code[at + ".route(".len()..].trim_start();
            let Some(literal) = argument.strip_prefix('"') else {
                panic!(
                    "{file}:{line}: a route registered with a path that is not a string \
                     literal; make it one, or teach tests/it/docs.rs to read it"
                );
            };
            let path = &literal[..literal.find('"').expect("the literal closes")];
            routes.push((path.to_owned(), format!("{file}:{line}")));
        }
    }
    routes
}

#[test]
fn every_route_is_documented_and_the_routes_table_matches_the_router() {
    let registered = registered_routes();
    assert!(
        registered
            .iter()
            .any(|(path, _)| path == "/api/push/{token}"),
        "the push route was not found in {ROUTE_SOURCES:?}: update ROUTE_SOURCES"
    );
    let table = routes_table();

    let unlabelled: Vec<String> = registered
        .iter()
        .filter(|(path, _)| !table.contains(path))
        .map(|(path, place)| format!("{path} ({place})"))
        .collect();
    assert!(
        unlabelled.is_empty(),
        "routes registered but missing from ROUTES in {ROUTES_TABLE_SOURCE} (their requests \
         would be labelled \"unmatched\"): {}",
        unlabelled.join(", ")
    );
    let paths: BTreeSet<String> = registered.iter().map(|(path, _)| path.clone()).collect();
    let stale: Vec<&String> = table.difference(&paths).collect();
    assert!(
        stale.is_empty(),
        "ROUTES in {ROUTES_TABLE_SOURCE} lists templates no `.route(` in {ROUTE_SOURCES:?} \
         registers: {stale:?}"
    );

    let docs: Vec<(&str, String)> = ROUTE_DOCS
        .iter()
        .map(|doc| (*doc, read(doc, "ROUTE_DOCS")))
        .collect();
    assert_documented("routes", &paths, &docs, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '{' | '}')
    });
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// The metric names the code declares: the constants, and the families written by hand.
fn declared_metric_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (file, text) in rust_sources(METRIC_CONST_SOURCES, "METRIC_CONST_SOURCES") {
        let before = names.len();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("pub const ")
                && line.contains(": &str = \"pushmon_")
                && line.ends_with("\";")
            {
                let value = &line[line.find('"').expect("a literal") + 1..line.len() - 2];
                names.insert(value.to_owned());
            }
        }
        assert!(
            names.len() > before,
            "no `pub const …: &str = \"pushmon_…\";` in {file}: update METRIC_CONST_SOURCES"
        );
    }
    for (file, text) in rust_sources(METRIC_FAMILY_SOURCES, "METRIC_FAMILY_SOURCES") {
        let before = names.len();
        for (at, _) in text.match_indices("\"pushmon_") {
            let name: String = text[at + 1..]
                .chars()
                .take_while(|c| is_metric_char(*c))
                .collect();
            names.insert(name);
        }
        assert!(
            names.len() > before,
            "no \"pushmon_…\" family in {file}: update METRIC_FAMILY_SOURCES"
        );
    }
    names
}

#[test]
fn every_metric_the_code_declares_is_documented() {
    let names = declared_metric_names();
    let doc = vec![(METRICS_DOC, read(METRICS_DOC, "METRICS_DOC"))];
    assert_documented("metrics", &names, &doc, is_metric_char);
}

/// What `/metrics` really serves, process metrics included, with a monitor that has
/// every per-monitor family.
#[tokio::test]
async fn every_metric_family_served_is_documented() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("documented", 60).await;
    app.push_ok(&monitor.push_token, &[("value", "1")]).await;
    let text = app.metrics().await;
    let families: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    for expected in ["pushmon_monitor_value", "process_resident_memory_bytes"] {
        assert!(families.contains(expected), "no {expected} in:\n{text}");
    }
    let doc = vec![(METRICS_DOC, read(METRICS_DOC, "METRICS_DOC"))];
    assert_documented(
        "metric families served by /metrics",
        &families,
        &doc,
        is_metric_char,
    );
}

/// The repository's files: tracked and untracked but not ignored, as git sees them;
/// every file but `NOT_IN_REPOSITORY` when git cannot say (no `.git`).
fn repository_files() -> Vec<String> {
    let listed = std::process::Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(repository())
        .output();
    if let Ok(output) = listed
        && output.status.success()
    {
        let mut files: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .split('\0')
            .filter(|path| !path.is_empty())
            .filter(|path| repository().join(path).is_file())
            .map(str::to_owned)
            .collect();
        files.sort();
        files.dedup();
        return files;
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(repository()).expect("list the repository") {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        if name.is_some_and(|name| NOT_IN_REPOSITORY.contains(&name.as_str())) {
            continue;
        }
        if path.is_dir() {
            walk(&path, &mut found);
        } else {
            found.push(path);
        }
    }
    found.iter().map(|path| relative(path)).collect()
}

/// What `text` cites from outside the repository, as `line: citation`: the shared
/// directory or its files, or a numbered section of the external contract or the
/// house style (`<NAME> 3`, `<NAME> section 3`, `<NAME> 9c`).
fn outside_citations(text: &str) -> Vec<String> {
    // Assembled here so that this file does not match itself.
    let names = [
        concat!("..", "/shared"),
        concat!("SP", "EC.md"),
        concat!("STY", "LE.md"),
    ];
    let numbered = [concat!("SP", "EC "), concat!("STY", "LE ")];
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for name in names {
            if line.contains(name) {
                found.push(format!("{}: {name}", index + 1));
            }
        }
        for prefix in numbered {
            for (at, _) in line.match_indices(prefix) {
                let rest = &line[at + prefix.len()..];
                let rest = rest.strip_prefix("section ").unwrap_or(rest);
                let section: String = rest
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                if section.starts_with(|c: char| c.is_ascii_digit()) {
                    // From the name to the end of the section number.
                    let end = line.len() - rest.len() + section.len();
                    found.push(format!("{}: {}", index + 1, &line[at..end]));
                }
            }
        }
    }
    found
}

#[test]
fn nothing_in_the_repository_cites_material_outside_it() {
    let mut offending = Vec::new();
    for file in repository_files() {
        let Ok(bytes) = std::fs::read(repository().join(&file)) else {
            continue;
        };
        let cited = outside_citations(&String::from_utf8_lossy(&bytes));
        if !cited.is_empty() {
            offending.push(format!("{file} (line {})", cited.join(", line ")));
        }
    }
    assert!(
        offending.is_empty(),
        "{} files cite material outside the repository (point to docs/ instead): {}",
        offending.len(),
        offending.join("; ")
    );
}
