//! No contract crate has an import cycle between its modules (cw-plus shape: `state` may
//! use `msg`, never the other way; the entry points use everything, nothing uses them).
//!
//! For every crate under `contracts/`, each top-level module (`src/<m>.rs` or `src/<m>/`,
//! files pulled in with `#[path]` belonging to the module that includes them) gets an edge to
//! every module it names as `crate::<m>` (also inside `use crate::{..}` groups) or, from a
//! top-level file, `super::<m>`; names re-exported by `lib.rs` (`pub use crate::m::X`) count
//! as `m`. Any cycle fails the test with its path. Runs with `cargo test -p garden-wire`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bin") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code without `//` comments (doc comments name modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// First path segments named after `prefix` (`crate::` or `super::`), groups included.
fn referenced(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.insert(ident(item.trim()));
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

/// The module graph of one crate (`src` directory).
fn crate_graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let module_of = |p: &Path| -> String {
        let rel = p.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("non-empty").as_os_str();
        first.to_string_lossy().trim_end_matches(".rs").to_string()
    };
    let mut owner: BTreeMap<PathBuf, String> =
        files.iter().map(|f| (f.clone(), module_of(f))).collect();
    let texts: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|f| (f.clone(), std::fs::read_to_string(f).expect("readable")))
        .collect();
    // `#[path = "x.rs"] mod tests;` makes x.rs part of the including module.
    for (f, text) in &texts {
        for (i, _) in text.match_indices("#[path = \"") {
            let name: String = text[i + 10..].chars().take_while(|c| *c != '"').collect();
            let included = f.parent().expect("parent").join(name);
            owner.insert(included, owner[f].clone());
        }
    }
    let lib = code(&texts[&src.join("lib.rs")]);
    let modules: BTreeSet<String> = owner.values().filter(|m| *m != "lib").cloned().collect();
    // `pub use crate::m::X;` in lib.rs: `crate::X` means module m.
    let mut alias: BTreeMap<String, String> = BTreeMap::new();
    for line in lib
        .lines()
        .filter(|l| l.trim_start().starts_with("pub use crate::"))
    {
        let path = line
            .trim()
            .trim_start_matches("pub use crate::")
            .trim_end_matches(';');
        let parts: Vec<&str> = path.split("::").collect();
        if let (Some(m), Some(last)) = (parts.first(), parts.last()) {
            alias.insert(ident(last), m.to_string());
        }
    }
    let resolve = |name: &str| -> Option<String> {
        if modules.contains(name) {
            Some(name.to_string())
        } else {
            alias.get(name).cloned()
        }
    };
    let mut graph = Graph::new();
    for (f, text) in &texts {
        let from = owner[f].clone();
        if from == "lib" {
            continue;
        }
        let c = code(text);
        let mut names = referenced(&c, "crate::");
        if f.parent() == Some(src) {
            names.extend(referenced(&c, "super::"));
        }
        let edges = graph.entry(from.clone()).or_default();
        for n in names {
            if let Some(to) = resolve(&n).filter(|to| *to != from) {
                edges.insert(to);
            }
        }
    }
    graph
}

/// A cycle in the graph, as a path that starts and ends at the same module.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        n: &str,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for next in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(g, next, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(g, n, &mut Vec::new(), &mut done))
}

#[test]
fn no_contract_crate_has_a_module_cycle() {
    let contracts = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("contracts/");
    let mut checked = 0;
    for entry in std::fs::read_dir(contracts).expect("contracts/") {
        let src = entry.expect("entry").path().join("src");
        if !src.join("lib.rs").exists() {
            continue;
        }
        let g = crate_graph(&src);
        assert!(
            g.len() > 1 || src.ends_with("wire/src"),
            "{} parsed no modules",
            src.display()
        );
        if let Some(cycle) = find_cycle(&g) {
            panic!("import cycle in {}: {}", src.display(), cycle.join(" -> "));
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "expected wire, consortium and settlement, checked {checked}"
    );
}

#[test]
fn the_checker_sees_cycles_and_grouped_imports() {
    let refs = referenced("use crate::{msg::X, state::{A, B}, error};", "crate::");
    assert_eq!(refs, ["error", "msg", "state"].map(String::from).into());
    let mut g = Graph::new();
    g.entry("msg".into()).or_default().insert("state".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("state".into()).or_default().insert("msg".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["msg".into(), "state".into(), "msg".into()])
    );
}
