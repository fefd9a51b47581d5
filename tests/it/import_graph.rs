//! The import graph of `src/`: no cycle between files, and no file importing a layer
//! above its own.
//!
//! Layers, bottom to top: `domain`, `store`, `monitor` and `alert`, `http` and `web`
//! (the dashboard, which `app` hands to `http`), then `app`
//! (with `app/`), `declare` (it reconciles through the registry), `check` (`pushmon
//! check`), `fuzzing` (the fuzz targets' checks), `client` (the command line's client
//! side) and `main`. `clock`,
//! `prometheus`, `telemetry`, `config` and `cli` (the clap types, beside `config`) are
//! cross-cutting: any layer but `domain` may import them, and they import nothing from
//! `http`, `app`, `declare`, `check`, `client` or `main`. `domain` imports only
//! `domain`. Between top-level modules the graph has no cycle either, so of `monitor`
//! and `alert` only one may import the other.
//!
//! An import is a path a file names starting with `crate::` or `super::` (`pushmon::`
//! in `main.rs`), in a `use` or in code, macros included. It points at the file that
//! defines the item, following `use` bindings and re-exports (`pub use
//! registry::Registry` in `monitor/mod.rs`). A module reaching down into its own
//! submodules (`self::x`, or a child's bare name: declaring, re-exporting or calling
//! them) is the module tree, not an import: otherwise every `use super::AppState` in
//! a child of `http/mod.rs` would be a cycle with its parent.
//!
//! Of the crates pushmon depends on, `domain` names only `DOMAIN_MAY_USE` (data and
//! formatting: no I/O, no runtime). A monitor's events are appended only from
//! `monitor/`: one writer per monitor. `client` imports only itself and `cli`.
//!
//! The scan parses each file with `syn`, so comments and strings never count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module's path below the library root (`["monitor", "registry"]`); `main.rs` is
/// the root of its own crate, named here by [`MAIN`].
type ModPath = Vec<String>;

const MAIN: &str = "<main>";

/// `src/`-relative file names, as the messages print them.
type FileName = String;

/// Where a file sits: a ranked layer, or a cross-cutting leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Ranked(u8, &'static str),
    Leaf,
    /// `lib.rs`: module declarations only.
    Root,
}

fn layer_of(file: &str) -> Layer {
    match top_module(file) {
        "domain" => Layer::Ranked(0, "domain"),
        // The clustered mode's log and ownership sit beside the fjall store.
        "store" | "cluster" => Layer::Ranked(1, "store/cluster"),
        "monitor" | "alert" => Layer::Ranked(2, "monitor/alert"),
        // The dashboard sits beside the HTTP API: it imports `http`, never the reverse.
        "http" | "web" => Layer::Ranked(3, "http/web"),
        "app" | "declare" | "check" | "client" | "main" => Layer::Ranked(4, "app"),
        // The fuzz targets' checks drive the parsers of `http`, `declare` and `store`.
        "fuzzing" => Layer::Ranked(4, "app"),
        "clock" | "prometheus" | "telemetry" | "config" | "cli" => Layer::Leaf,
        "lib" => Layer::Root,
        other => panic!("src/{file}: top-level module `{other}` has no layer: add it to layer_of"),
    }
}

/// The top-level module a file belongs to (`monitor` for `monitor/actor.rs`).
fn top_module(file: &str) -> &str {
    file.split('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".rs")
}

/// One import: the file it is in, the file it points at, and the path as written.
#[derive(Clone, Debug)]
struct Import {
    from: FileName,
    to: FileName,
    written: String,
}

/// Every module of the crate and every name a `use` binds in it.
struct Crate {
    /// Module path → the file that holds it (inline modules share their file).
    modules: BTreeMap<ModPath, FileName>,
    /// (module, name) → the absolute path the name stands for.
    aliases: BTreeMap<(ModPath, String), ModPath>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The module a file is, from its place in the tree (no `#[path]` in this crate).
fn module_of_file(file: &str) -> ModPath {
    if file == "main.rs" {
        return vec![MAIN.to_owned()];
    }
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

fn parse_all() -> (Crate, BTreeMap<FileName, syn::File>) {
    let root = src_dir();
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    let mut files = BTreeMap::new();
    for path in paths {
        let name = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = syn::parse_file(&text).unwrap_or_else(|error| panic!("src/{name}: {error}"));
        files.insert(name, parsed);
    }
    let mut krate = Crate {
        modules: BTreeMap::new(),
        aliases: BTreeMap::new(),
    };
    for (name, parsed) in &files {
        let module = module_of_file(name);
        krate.modules.insert(module.clone(), name.clone());
        collect_inline_modules(&mut krate, name, &module, &parsed.items);
    }
    for (name, parsed) in &files {
        collect_aliases(&mut krate, &module_of_file(name), &parsed.items);
    }
    (krate, files)
}

fn collect_inline_modules(krate: &mut Crate, file: &str, module: &ModPath, items: &[syn::Item]) {
    for item in items {
        if let syn::Item::Mod(inner) = item
            && let Some((_, content)) = &inner.content
        {
            let mut path = module.clone();
            path.push(inner.ident.to_string());
            krate.modules.insert(path.clone(), file.to_owned());
            collect_inline_modules(krate, file, &path, content);
        }
    }
}

fn collect_aliases(krate: &mut Crate, module: &ModPath, items: &[syn::Item]) {
    for item in items {
        match item {
            syn::Item::Use(item_use) => {
                let mut flat = Vec::new();
                flatten_use(&item_use.tree, Vec::new(), &mut flat);
                for (written, binding) in flat {
                    let Some(binding) = binding else { continue };
                    if let Some(target) = krate.absolute(module, &written) {
                        krate.aliases.insert((module.clone(), binding), target);
                    }
                }
            }
            syn::Item::Mod(inner) => {
                if let Some((_, content)) = &inner.content {
                    let mut path = module.clone();
                    path.push(inner.ident.to_string());
                    collect_aliases(krate, &path, content);
                }
            }
            _ => {}
        }
    }
}

/// Each leaf of a use tree: its path, and the name it binds (`None` for a glob).
fn flatten_use(
    tree: &syn::UseTree,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let with = |segment: String| {
        let mut path = prefix.clone();
        path.push(segment);
        path
    };
    match tree {
        syn::UseTree::Path(path) => flatten_use(&path.tree, with(path.ident.to_string()), out),
        syn::UseTree::Name(name) => {
            let ident = name.ident.to_string();
            if ident == "self" {
                let binding = prefix.last().cloned();
                out.push((prefix, binding));
            } else {
                out.push((with(ident.clone()), Some(ident)));
            }
        }
        syn::UseTree::Rename(rename) => {
            let ident = rename.ident.to_string();
            let path = if ident == "self" { prefix } else { with(ident) };
            out.push((path, Some(rename.rename.to_string())));
        }
        syn::UseTree::Glob(_) => out.push((prefix, None)),
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                flatten_use(tree, prefix.clone(), out);
            }
        }
    }
}

/// How a path written in `module` starts.
enum Start {
    /// `crate::`, `super::` or `pushmon::`: a path from outside the module's subtree.
    Outside(ModPath),
    /// `self::` or a child module's bare name: into the module's own subtree.
    Below(ModPath),
}

impl Crate {
    fn is_module(&self, path: &ModPath) -> bool {
        self.modules.contains_key(path)
    }

    /// Where `written`, as written in `module`, starts, and the rest of it; `None` if
    /// it names another crate (or is not a path into this one).
    fn start(&self, module: &ModPath, written: &[String]) -> Option<(Start, usize)> {
        let in_main = module.first().is_some_and(|first| first == MAIN);
        match written.first()?.as_str() {
            "crate" if in_main => None,
            "crate" => Some((Start::Outside(Vec::new()), 1)),
            "pushmon" if in_main => Some((Start::Outside(Vec::new()), 1)),
            "super" => {
                let mut base = module.clone();
                let mut used = 0;
                while written.get(used).is_some_and(|segment| segment == "super") {
                    base.pop()?;
                    used += 1;
                }
                Some((Start::Outside(base), used))
            }
            "self" => Some((Start::Below(module.clone()), 1)),
            child => {
                let mut path = module.clone();
                path.push(child.to_owned());
                self.is_module(&path)
                    .then_some((Start::Below(module.clone()), 0))
            }
        }
    }

    /// The absolute path `written` names, as written in `module`.
    fn absolute(&self, module: &ModPath, written: &[String]) -> Option<ModPath> {
        let (start, used) = self.start(module, written)?;
        let mut path = match start {
            Start::Outside(base) | Start::Below(base) => base,
        };
        path.extend(written[used..].iter().cloned());
        Some(path)
    }

    /// The file that defines what `path` names, following `use` bindings.
    fn file_of(&self, path: &ModPath, depth: usize) -> Option<FileName> {
        assert!(depth < 16, "re-export loop at {}", path.join("::"));
        let module_len = (0..=path.len())
            .rev()
            .find(|len| self.is_module(&path[..*len].to_vec()))?;
        let module = path[..module_len].to_vec();
        if let Some(item) = path.get(module_len)
            && let Some(target) = self.aliases.get(&(module.clone(), item.clone()))
        {
            let mut followed = target.clone();
            followed.extend(path[module_len + 1..].iter().cloned());
            if followed != *path {
                return self.file_of(&followed, depth + 1);
            }
        }
        self.modules.get(&module).cloned()
    }
}

/// Collects the imports of one file.
struct Scan<'a> {
    krate: &'a Crate,
    file: FileName,
    module: ModPath,
    imports: Vec<Import>,
}

impl Scan<'_> {
    fn record(&mut self, written: &[String], shown: String) {
        let Some((start, _)) = self.krate.start(&self.module, written) else {
            return;
        };
        if matches!(start, Start::Below(_)) {
            return;
        }
        let Some(path) = self.krate.absolute(&self.module, written) else {
            return;
        };
        // `super::*` in a file's own `mod tests` is the file itself.
        let Some(to) = self.krate.file_of(&path, 0) else {
            return;
        };
        if to != self.file {
            self.imports.push(Import {
                from: self.file.clone(),
                to,
                written: shown,
            });
        }
    }

    /// Paths in a macro's tokens: `crate :: a :: b`, at any depth of brackets.
    fn scan_tokens(&mut self, mut cursor: syn::buffer::Cursor) {
        while !cursor.eof() {
            if let Some((inside, _, _, next)) = cursor.any_group() {
                self.scan_tokens(inside);
                cursor = next;
            } else if let Some((ident, next)) = cursor.ident() {
                let mut segments = vec![ident.to_string()];
                let mut after = next;
                while let Some((first, one)) = after.punct()
                    && first.as_char() == ':'
                    && let Some((second, two)) = one.punct()
                    && second.as_char() == ':'
                    && let Some((segment, three)) = two.ident()
                {
                    segments.push(segment.to_string());
                    after = three;
                }
                if segments.len() > 1
                    && matches!(segments[0].as_str(), "crate" | "super" | "self" | "pushmon")
                {
                    let shown = segments.join("::");
                    self.record(&segments, format!("{shown} (in a macro)"));
                }
                cursor = after;
            } else if let Some((_, next)) = cursor.token_tree() {
                cursor = next;
            } else {
                break;
            }
        }
    }
}

impl<'ast> Visit<'ast> for Scan<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_some() {
            self.module.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut flat = Vec::new();
        flatten_use(&item.tree, Vec::new(), &mut flat);
        for (written, _) in flat {
            let shown = format!("use {}", written.join("::"));
            self.record(&written, shown);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let written: Vec<String> = path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect();
        if written.len() > 1 && path.leading_colon.is_none() {
            let shown = written.join("::");
            self.record(&written, shown);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        let buffer = syn::buffer::TokenBuffer::new2(mac.tokens.clone());
        self.scan_tokens(buffer.begin());
    }

    /// `pub(in crate::x)` and `pub(super)` restrict visibility; they import nothing.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}
}

fn imports_of(krate: &Crate, name: &str, parsed: &syn::File) -> Vec<Import> {
    let mut scan = Scan {
        krate,
        file: name.to_owned(),
        module: module_of_file(name),
        imports: Vec::new(),
    };
    scan.visit_file(parsed);
    scan.imports
}

fn all_imports() -> Vec<Import> {
    let (krate, files) = parse_all();
    files
        .iter()
        .flat_map(|(name, parsed)| imports_of(&krate, name, parsed))
        .collect()
}

/// Each import from one node to another, once, with the first way it was written.
fn graph(
    imports: &[Import],
    node: impl Fn(&str) -> String,
) -> BTreeMap<String, BTreeMap<String, &Import>> {
    let mut edges: BTreeMap<String, BTreeMap<String, &Import>> = BTreeMap::new();
    for import in imports {
        let (from, to) = (node(&import.from), node(&import.to));
        if from != to {
            edges.entry(from).or_default().entry(to).or_insert(import);
        }
    }
    edges
}

/// Each strongly connected set of nodes, with the shortest cycle through each of its
/// nodes (each cycle once): every loop to open, without listing every elementary
/// cycle of a large tangle.
fn cycles(
    edges: &BTreeMap<String, BTreeMap<String, &Import>>,
) -> Vec<(Vec<Vec<String>>, BTreeSet<String>)> {
    let nodes: BTreeSet<String> = edges
        .iter()
        .flat_map(|(from, targets)| std::iter::once(from.clone()).chain(targets.keys().cloned()))
        .collect();
    let reach = |start: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.clone()];
        while let Some(node) = stack.pop() {
            for next in edges
                .get(&node)
                .into_iter()
                .flat_map(|targets| targets.keys())
            {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|node| (node, reach(node))).collect();
    let mut done = BTreeSet::new();
    let mut found = Vec::new();
    for node in &nodes {
        if done.contains(node) || !reachable[node].contains(node) {
            continue;
        }
        let component: BTreeSet<String> = reachable[node]
            .iter()
            .filter(|other| reachable[*other].contains(node))
            .cloned()
            .collect();
        done.extend(component.iter().cloned());
        let mut loops: Vec<Vec<String>> = Vec::new();
        for member in &component {
            let mut cycle = shortest_cycle(edges, member);
            // The same loop found from another of its nodes: start each at its least.
            cycle.pop();
            let least = (0..cycle.len())
                .min_by_key(|index| &cycle[*index])
                .unwrap_or(0);
            cycle.rotate_left(least);
            cycle.push(cycle[0].clone());
            if !loops.contains(&cycle) {
                loops.push(cycle);
            }
        }
        found.push((loops, component));
    }
    found
}

/// The shortest path from `start` back to itself (breadth first).
fn shortest_cycle(
    edges: &BTreeMap<String, BTreeMap<String, &Import>>,
    start: &String,
) -> Vec<String> {
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.clone()]);
    while let Some(node) = queue.pop_front() {
        for next in edges
            .get(&node)
            .into_iter()
            .flat_map(|targets| targets.keys())
        {
            if next == start {
                let mut path = vec![node.clone()];
                while let Some(before) = previous.get(path.last().unwrap()) {
                    path.push(before.clone());
                }
                path.reverse();
                path.push(start.clone());
                return path;
            }
            if !previous.contains_key(next) && next != start {
                previous.insert(next.clone(), node.clone());
                queue.push_back(next.clone());
            }
        }
    }
    unreachable!("{start} is in a cycle")
}

fn describe_cycles(edges: &BTreeMap<String, BTreeMap<String, &Import>>, what: &str) -> Vec<String> {
    let mut described = Vec::new();
    for (loops, component) in cycles(edges) {
        for cycle in loops {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|pair| {
                    let import = edges[&pair[0]][&pair[1]];
                    format!(
                        "  {} -> {}   (src/{}: {})",
                        pair[0], pair[1], import.from, import.written
                    )
                })
                .collect();
            described.push(format!(
                "{what} cycle {}\n{}\n  (tangled {what}s: {})",
                cycle.join(" -> "),
                steps.join("\n"),
                component.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    described
}

/// Why `import` breaks the layering, if it does.
fn layer_violation(import: &Import) -> Option<String> {
    let (from, to) = (layer_of(&import.from), layer_of(&import.to));
    let top = top_module(&import.to);
    let problem = match (from, to) {
        (Layer::Ranked(0, _), _) if !matches!(to, Layer::Ranked(0, _)) => {
            "domain imports only domain".to_owned()
        }
        (Layer::Ranked(from_rank, from_name), Layer::Ranked(to_rank, to_name))
            if to_rank > from_rank =>
        {
            format!("{from_name} imports {to_name}, a layer above it")
        }
        (Layer::Leaf, Layer::Ranked(rank, name)) if rank >= 3 => {
            format!(
                "the cross-cutting {} imports {name} ({top})",
                top_module(&import.from)
            )
        }
        _ => return None,
    };
    Some(format!(
        "src/{} -> src/{}: {problem}   ({})",
        import.from, import.to, import.written
    ))
}

#[test]
fn import_graph_has_no_cycle_between_files() {
    let imports = all_imports();
    // A scan that found nothing would pass vacuously.
    assert!(imports.len() > 100, "only {} imports found", imports.len());
    let found = describe_cycles(&graph(&imports, str::to_owned), "file");
    assert!(
        found.is_empty(),
        "import loops between files:\n{}",
        found.join("\n")
    );
}

#[test]
fn import_graph_has_no_cycle_between_top_level_modules() {
    let imports = all_imports();
    let found = describe_cycles(
        &graph(&imports, |file| top_module(file).to_owned()),
        "module",
    );
    assert!(
        found.is_empty(),
        "import loops between modules:\n{}",
        found.join("\n")
    );
}

#[test]
fn import_graph_never_points_up_a_layer() {
    let imports = all_imports();
    let mut found: Vec<String> = imports.iter().filter_map(layer_violation).collect();
    found.sort();
    found.dedup();
    assert!(
        found.is_empty(),
        "imports against the layering:\n{}",
        found.join("\n")
    );
}

/// The command line's client talks to a server only over HTTP, as any other client
/// does: `client/` imports nothing of the crate but itself and the clap types of
/// `cli`, so it cannot lean on the server's internals.
#[test]
fn the_client_imports_nothing_of_the_server() {
    let imports = all_imports();
    let from_client: Vec<&Import> = imports
        .iter()
        .filter(|import| top_module(&import.from) == "client")
        .collect();
    assert!(
        from_client
            .iter()
            .any(|import| top_module(&import.to) == "cli"),
        "the scan saw no import of cli from client/"
    );
    let found: Vec<String> = from_client
        .iter()
        .filter(|import| !matches!(top_module(&import.to), "client" | "cli"))
        .map(|import| {
            format!(
                "src/{} -> src/{}   ({})",
                import.from, import.to, import.written
            )
        })
        .collect();
    assert!(
        found.is_empty(),
        "client/ imports the server's code:\n{}",
        found.join("\n")
    );
}

/// The scanner itself: it must see the imports the rules are about, through
/// re-exports, `super::`, inline paths and macros.
#[test]
fn import_graph_scan_sees_reexports_super_and_inline_paths() {
    let imports = all_imports();
    let has = |from: &str, to: &str| {
        imports
            .iter()
            .any(|import| import.from == from && import.to == to)
    };
    // `use crate::monitor::Registry` lands on the file that defines it.
    assert!(has("app.rs", "monitor/registry.rs"));
    // `pushmon::app::run_with_reload` from the binary.
    assert!(has("main.rs", "app.rs"));
    // `use super::AppState` from a child of `http`.
    assert!(has("http/ingress.rs", "http/mod.rs"));
    // A parent reaching into its children is not an import.
    assert!(!has("http/mod.rs", "http/ingress.rs"));
    // `use crate::domain::ids::Timestamp` at the very bottom.
    assert!(has("clock.rs", "domain/ids.rs"));

    // Paths inside macros and code count; comments, strings and other crates do not.
    let (krate, _) = parse_all();
    let snippet: syn::File = syn::parse_str(
        r#"
        // use crate::http::AppState;
        fn f() {
            assert!(1 < crate::domain::event::MAX_MSG_BYTES, "crate::app::run");
            let _ = super::clock::now();
            let _ = std::sync::Arc::new(());
        }
        "#,
    )
    .unwrap();
    let mut seen: Vec<String> = imports_of(&krate, "prometheus.rs", &snippet)
        .into_iter()
        .map(|import| import.to)
        .collect();
    seen.sort();
    assert_eq!(seen, ["clock.rs", "domain/event.rs"]);

    // Rules fire on made-up imports.
    let made_up = |from: &str, to: &str| Import {
        from: from.to_owned(),
        to: to.to_owned(),
        written: "made up".to_owned(),
    };
    assert!(layer_violation(&made_up("store/mod.rs", "monitor/actor.rs")).is_some());
    assert!(layer_violation(&made_up("domain/event.rs", "clock.rs")).is_some());
    assert!(layer_violation(&made_up("config.rs", "http/mod.rs")).is_some());
    assert!(layer_violation(&made_up("http/api.rs", "declare.rs")).is_some());
    assert!(layer_violation(&made_up("app.rs", "http/mod.rs")).is_none());
    let looped = [
        made_up("a.rs", "b.rs"),
        made_up("b.rs", "c.rs"),
        made_up("c.rs", "a.rs"),
    ];
    let described = describe_cycles(&graph(&looped, str::to_owned), "file");
    assert_eq!(described.len(), 1);
    assert!(
        described[0].starts_with("file cycle a.rs -> b.rs -> c.rs -> a.rs"),
        "{}",
        described[0]
    );
}

/// The crates `domain` may name, of those pushmon depends on: data and formatting, no
/// I/O and no runtime. `croner`, `chrono` and `chrono_tz` are pure computation over
/// cron patterns and the IANA zone database compiled into the binary (no clock read,
/// no file read): `domain/schedule.rs` computes a cron monitor's slots with them.
const DOMAIN_MAY_USE: &[&str] = &[
    "serde",
    "base64",
    "uuid",
    "time",
    "croner",
    "chrono",
    "chrono_tz",
    // IP ranges as data (a monitor's allowed sources).
    "ipnet",
];

/// The `[dependencies]` of Cargo.toml, as Rust names them (`-` becomes `_`).
fn dependencies() -> BTreeSet<String> {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut names = BTreeSet::new();
    let mut in_dependencies = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
        } else if in_dependencies
            && let Some((name, _)) = line.split_once('=')
            && !line.starts_with('#')
        {
            names.insert(name.trim().replace('-', "_"));
        }
    }
    names
}

/// The first segment of every path a file names (`tokio` in `tokio::spawn`, in a
/// `use`, in code, in a macro's or an attribute's tokens), with the path as written.
#[derive(Default)]
struct FirstSegments(Vec<(String, String)>);

impl FirstSegments {
    fn scan_tokens(&mut self, mut cursor: syn::buffer::Cursor) {
        while !cursor.eof() {
            if let Some((inside, _, _, next)) = cursor.any_group() {
                self.scan_tokens(inside);
                cursor = next;
            } else if let Some((ident, next)) = cursor.ident() {
                if let Some((first, one)) = next.punct()
                    && first.as_char() == ':'
                    && let Some((second, _)) = one.punct()
                    && second.as_char() == ':'
                {
                    self.0
                        .push((ident.to_string(), format!("{ident}::… (in tokens)")));
                }
                cursor = next;
            } else if let Some((_, next)) = cursor.token_tree() {
                cursor = next;
            } else {
                break;
            }
        }
    }
}

impl<'ast> Visit<'ast> for FirstSegments {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut flat = Vec::new();
        flatten_use(&item.tree, Vec::new(), &mut flat);
        for (written, _) in flat {
            if let Some(first) = written.first() {
                self.0
                    .push((first.clone(), format!("use {}", written.join("::"))));
            }
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if (path.segments.len() > 1 || path.leading_colon.is_some())
            && let Some(first) = path.segments.first()
        {
            let written: Vec<String> = path
                .segments
                .iter()
                .map(|segment| segment.ident.to_string())
                .collect();
            self.0.push((first.ident.to_string(), written.join("::")));
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        let buffer = syn::buffer::TokenBuffer::new2(mac.tokens.clone());
        self.scan_tokens(buffer.begin());
    }

    fn visit_attribute(&mut self, attribute: &'ast syn::Attribute) {
        if let syn::Meta::List(list) = &attribute.meta {
            let buffer = syn::buffer::TokenBuffer::new2(list.tokens.clone());
            self.scan_tokens(buffer.begin());
        }
        syn::visit::visit_attribute(self, attribute);
    }
}

/// The dependencies `parsed` names that `allowed` does not list, as `crate: path`.
fn crates_named_beyond(
    parsed: &syn::File,
    dependencies: &BTreeSet<String>,
    allowed: &[&str],
) -> Vec<String> {
    let mut scan = FirstSegments::default();
    scan.visit_file(parsed);
    let mut found: Vec<String> = scan
        .0
        .into_iter()
        .filter(|(first, _)| dependencies.contains(first) && !allowed.contains(&first.as_str()))
        .map(|(first, shown)| format!("{first}: {shown}"))
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn domain_names_no_crate_that_does_io() {
    let dependencies = dependencies();
    for expected in ["tokio", "fjall", "ractor", "axum", "metrics", "uuid"] {
        assert!(dependencies.contains(expected), "{dependencies:?}");
    }
    let (_, files) = parse_all();
    let mut found = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    for (name, parsed) in files
        .iter()
        .filter(|(name, _)| top_module(name) == "domain")
    {
        for named in crates_named_beyond(parsed, &dependencies, &[]) {
            let krate = named.split(':').next().unwrap_or_default().to_owned();
            if DOMAIN_MAY_USE.contains(&krate.as_str()) {
                allowed_seen.insert(krate);
            } else {
                found.push(format!("src/{name}: {named}"));
            }
        }
    }
    // The scan sees the crates domain does use, in a `use`, in code and in a macro.
    assert_eq!(
        allowed_seen,
        DOMAIN_MAY_USE
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<BTreeSet<_>>()
    );
    assert!(
        found.is_empty(),
        "domain names crates beyond {DOMAIN_MAY_USE:?}:\n{}",
        found.join("\n")
    );

    // And it sees them wherever they are written.
    let snippet: syn::File = syn::parse_str(
        r#"
        use tokio::sync::mpsc;
        #[derive(ractor::Thing)]
        struct S;
        macro_rules! m { () => { ::fjall::Database::open() }; }
        fn f() { let _ = axum::Router::new(); metrics::counter!("x"); let _ = Event::Created; }
        "#,
    )
    .unwrap();
    let named: Vec<String> = crates_named_beyond(&snippet, &dependencies, DOMAIN_MAY_USE)
        .into_iter()
        .map(|named| named.split(':').next().unwrap_or_default().to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(named, ["axum", "fjall", "metrics", "ractor", "tokio"]);
}

/// The calls that append a monitor's events: `EventStore::append` (three arguments,
/// unlike `Vec::append` or `HeaderMap::append`), `append_with`, `append_heartbeat`,
/// `append_heartbeats` and `write_snapshot`.
#[derive(Default)]
struct EventAppends(Vec<String>);

impl<'ast> Visit<'ast> for EventAppends {
    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let method = call.method.to_string();
        if matches!(
            method.as_str(),
            "append_with" | "append_heartbeat" | "append_heartbeats" | "write_snapshot"
        ) || (method == "append" && call.args.len() == 3)
        {
            self.0.push(method);
        }
        syn::visit::visit_expr_method_call(self, call);
    }
}

fn event_appends(parsed: &syn::File) -> Vec<String> {
    let mut scan = EventAppends::default();
    scan.visit_file(parsed);
    scan.0
}

/// One writer per monitor: its events are appended only from `monitor/` (its actor,
/// the registry for the `created` event before the actor exists, and the registry for
/// plain heartbeats, which the actor applies once durable). HTTP handlers, alerting,
/// the monitors file and the app ask the registry or the monitor's actor instead.
#[test]
fn only_the_monitor_module_appends_a_monitors_events() {
    let (_, files) = parse_all();
    let mut appending = BTreeMap::new();
    for (name, parsed) in &files {
        let calls = event_appends(parsed);
        if !calls.is_empty() && !name.starts_with("store/") {
            appending.insert(name.clone(), calls);
        }
    }
    // The scan sees the appends there are.
    assert!(
        appending.contains_key("monitor/actor.rs")
            && appending.contains_key("monitor/registry/spawn.rs")
            && appending.contains_key("monitor/registry.rs")
            && appending.contains_key("monitor/registry/ingest.rs"),
        "{appending:?}"
    );
    let outside: Vec<String> = appending
        .iter()
        .filter(|(name, _)| top_module(name) != "monitor")
        .map(|(name, calls)| format!("src/{name}: {}", calls.join(", ")))
        .collect();
    assert!(
        outside.is_empty(),
        "a monitor's events appended outside monitor/:\n{}",
        outside.join("\n")
    );
    let snippet: syn::File = syn::parse_str(
        "fn f() { store.append(id, events, None); list.append(&mut other); \
         store.append_with(append); store.append_heartbeat(id, at, heartbeat); }",
    )
    .unwrap();
    assert_eq!(
        event_appends(&snippet),
        ["append", "append_with", "append_heartbeat"]
    );
}
