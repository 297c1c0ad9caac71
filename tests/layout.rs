//! The layout of `src/` keeps its promise: the modules' dependencies run one way (no
//! cycle, however long), and no stage depends on the modules that present results
//! (`report`, `cli`). A change that makes two modules use each other fails here, naming
//! the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules of the library and the modules each one names as `crate::x`
/// (comments and unit-test modules left out).
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let first = relative.iter().next().unwrap().to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "main" || module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let code: String = code.lines().map(|l| format!("{}\n", without_comment(l))).collect();
            let used = deps.entry(module.clone()).or_default();
            used.extend(crate_paths(&code).into_iter().filter(|m| *m != module));
        }
    }
    let known: BTreeSet<String> = deps.keys().cloned().collect();
    for used in deps.values_mut() {
        used.retain(|d| known.contains(d));
    }
    deps
}

/// `line` without a `//` comment (one inside a string literal is kept).
fn without_comment(line: &str) -> &str {
    let mut in_string = false;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The first names after every `crate::` in `code`, groups included
/// (`crate::{a, b::c}` names `a` and `b`).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            // The items of the group: split at its own commas, up to its closing brace.
            let mut depth = 0;
            let mut item_start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(&group[item_start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&group[item_start..j]));
                        item_start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|n| !n.is_empty() && n != "self");
    out
}

/// A cycle through `from`, if there is one: the modules on it, in order.
fn cycle_from(deps: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        deps: &BTreeMap<String, BTreeSet<String>>,
        goal: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in &deps[at] {
            if next == goal {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(deps, goal, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    walk(deps, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn module_dependencies_run_one_way() {
    let deps = dependencies();
    assert!(deps.len() > 20, "found only {:?}", deps.keys());
    for module in deps.keys() {
        if let Some(cycle) = cycle_from(&deps, module) {
            panic!(
                "modules depend on each other in a cycle: {} -> {module}",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn stages_do_not_depend_on_how_results_are_shown() {
    let deps = dependencies();
    for stage in [
        "scan", "write", "append", "verify", "split", "pipeline", "read", "store",
    ] {
        let used = &deps[stage];
        for shown in ["report", "cli"] {
            assert!(!used.contains(shown), "'{stage}' depends on '{shown}'");
        }
    }
}

#[test]
fn crate_paths_are_found_in_groups_and_not_in_comments() {
    let code = "use crate::{a, b::c,\n    d::{e, f}};\nlet x = crate::g::h(); \"//\"; crate::i\n";
    let code: String = code.lines().map(|l| format!("{}\n", without_comment(l))).collect();
    let found: Vec<String> = crate_paths(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "d", "g", "i"]);
    assert_eq!(without_comment("x; // crate::j"), "x; ");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    deps.insert("a".into(), ["b".to_string()].into());
    deps.insert("b".into(), ["c".to_string()].into());
    deps.insert("c".into(), ["a".to_string()].into());
    deps.insert("d".into(), ["a".to_string()].into());
    assert_eq!(cycle_from(&deps, "a"), Some(vec!["a".into(), "b".into(), "c".into()]));
    assert_eq!(cycle_from(&deps, "d"), None);
}
