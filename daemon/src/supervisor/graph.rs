//! The dependency graph between definitions: cycles, missing dependencies, closures and order.

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
use std::collections::{BTreeMap, BTreeSet};

/// Definition name → the names it depends on.
pub type Deps<'a> = BTreeMap<&'a str, &'a [String]>;

/// Rejects a cycle anywhere in `deps`, spelling the whole cycle out: `a -> b -> c -> a`.
pub fn check_cycles(deps: &Deps) -> Result<(), String> {
    let mut graph = DiGraphMap::<&str, ()>::new();
    for (&name, ds) in deps {
        graph.add_node(name);
        for d in ds.iter() {
            graph.add_edge(name, d.as_str(), ());
        }
    }
    for scc in tarjan_scc(&graph) {
        let looped = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if looped {
            let members: BTreeSet<&str> = scc.iter().copied().collect();
            return Err(format!("dependency cycle: {}", spell_cycle(&graph, &members)));
        }
    }
    Ok(())
}

/// Walks one cycle through a strongly connected component, from its smallest name.
fn spell_cycle(graph: &DiGraphMap<&str, ()>, members: &BTreeSet<&str>) -> String {
    let start = *members.first().expect("an SCC is never empty");
    // Depth-first search for a path back to `start`, staying inside the component.
    let mut path = vec![start];
    let mut seen = BTreeSet::from([start]);
    fn dfs<'a>(
        graph: &DiGraphMap<&'a str, ()>,
        members: &BTreeSet<&'a str>,
        start: &'a str,
        path: &mut Vec<&'a str>,
        seen: &mut BTreeSet<&'a str>,
    ) -> bool {
        let here = *path.last().expect("path starts non-empty");
        let mut next: Vec<&str> = graph.neighbors(here).filter(|n| members.contains(n)).collect();
        next.sort_unstable();
        for n in next {
            if n == start {
                path.push(n);
                return true;
            }
            if seen.insert(n) {
                path.push(n);
                if dfs(graph, members, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    dfs(graph, members, start, &mut path, &mut seen);
    path.join(" -> ")
}

/// The definitions `roots` need, themselves included, each after its dependencies; or the first
/// missing dependency, named with who needs it.
pub fn closure(deps: &Deps, roots: &[&str]) -> Result<Vec<String>, String> {
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    fn visit(
        deps: &Deps,
        name: &str,
        needed_by: Option<&str>,
        done: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> Result<(), String> {
        if done.contains(name) {
            return Ok(());
        }
        let Some(ds) = deps.get(name) else {
            return Err(match needed_by {
                Some(by) => format!("{by} depends on `{name}`, which is not defined"),
                None => format!("no sidecar named `{name}`"),
            });
        };
        done.insert(name.to_string());
        for d in ds.iter() {
            visit(deps, d, Some(name), done, order)?;
        }
        order.push(name.to_string());
        Ok(())
    }
    for root in roots {
        visit(deps, root, None, &mut done, &mut order)?;
    }
    Ok(order)
}

/// The definitions that depend on any of `roots`, directly or not (roots excluded).
pub fn dependents(deps: &Deps, roots: &[&str]) -> BTreeSet<String> {
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut frontier: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
    while let Some(target) = frontier.pop() {
        for (&name, ds) in deps {
            if ds.contains(&target) && !roots.contains(&name) && found.insert(name.to_string()) {
                frontier.push(name.to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&'static str, &[&'static str])]) -> BTreeMap<String, Vec<String>> {
        edges.iter().map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect())).collect()
    }

    fn view(g: &BTreeMap<String, Vec<String>>) -> Deps<'_> {
        g.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect()
    }

    #[test]
    fn spells_out_the_whole_cycle() {
        let g = graph(&[("web", &["api"]), ("api", &["db"]), ("db", &["web"]), ("x", &[])]);
        assert_eq!(check_cycles(&view(&g)).unwrap_err(), "dependency cycle: api -> db -> web -> api");
        let selfish = graph(&[("a", &["a"])]);
        assert_eq!(check_cycles(&view(&selfish)).unwrap_err(), "dependency cycle: a -> a");
        assert!(check_cycles(&view(&graph(&[("a", &["b"]), ("b", &[])]))).is_ok());
    }

    #[test]
    fn closure_orders_dependencies_first_and_names_missing_ones() {
        let g = graph(&[("web", &["api", "cache"]), ("api", &["db"]), ("db", &[]), ("cache", &[])]);
        let order = closure(&view(&g), &["web"]).unwrap();
        let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
        assert!(pos("db") < pos("api") && pos("api") < pos("web") && pos("cache") < pos("web"));
        assert_eq!(order.len(), 4);
        let g = graph(&[("web", &["db"])]);
        assert_eq!(closure(&view(&g), &["web"]).unwrap_err(), "web depends on `db`, which is not defined");
    }

    #[test]
    fn dependents_are_transitive() {
        let g = graph(&[("web", &["api"]), ("api", &["db"]), ("db", &[]), ("other", &[])]);
        let d = dependents(&view(&g), &["db"]);
        assert_eq!(d.into_iter().collect::<Vec<_>>(), vec!["api", "web"]);
    }
}
