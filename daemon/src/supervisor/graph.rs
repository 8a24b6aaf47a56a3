//! The dependency graph between definitions: cycles, missing dependencies, closures and order.
//! Every walk here is iterative and linear: a chain of definitions may be far deeper than a
//! thread's stack, and a graph may hold thousands of definitions.

use petgraph::algo::kosaraju_scc;
use petgraph::graphmap::DiGraphMap;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

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
    // Kosaraju, not Tarjan: petgraph's Kosaraju walks with explicit stacks, Tarjan recurses.
    let looped = kosaraju_scc(&graph)
        .into_iter()
        .filter(|scc| scc.len() > 1 || graph.contains_edge(scc[0], scc[0]))
        .map(|scc| scc.into_iter().collect::<BTreeSet<&str>>())
        .min();
    match looped {
        Some(members) => Err(format!("dependency cycle: {}", spell_cycle(&graph, &members))),
        None => Ok(()),
    }
}

/// The shortest cycle through the smallest name of a strongly connected component, found
/// breadth-first inside the component.
fn spell_cycle(graph: &DiGraphMap<&str, ()>, members: &BTreeSet<&str>) -> String {
    let start = *members.first().expect("an SCC is never empty");
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(here) = queue.pop_front() {
        let mut next: Vec<&str> = graph.neighbors(here).filter(|n| members.contains(n)).collect();
        next.sort_unstable();
        for n in next {
            if n == start {
                let mut path = vec![start, here];
                while let Some(&before) = came_from.get(path.last().expect("never empty")) {
                    path.push(before);
                }
                path.reverse();
                return path.join(" -> ");
            }
            if !came_from.contains_key(n) {
                came_from.insert(n, here);
                queue.push_back(n);
            }
        }
    }
    unreachable!("every member of a looped component lies on a cycle through the others")
}

/// The definitions `roots` need, themselves included, each after its dependencies; or the first
/// missing dependency, named with who needs it.
pub fn closure(deps: &Deps, roots: &[&str]) -> Result<Vec<String>, String> {
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    // Depth-first with an explicit stack of (definition, how many of its dependencies are seen).
    let mut stack: Vec<(&str, usize)> = Vec::new();
    for root in roots {
        enter(deps, root, None, &mut done, &mut stack)?;
        while let Some(&(name, next)) = stack.last() {
            match deps[name].get(next) {
                Some(d) => {
                    stack.last_mut().expect("just seen").1 += 1;
                    enter(deps, d, Some(name), &mut done, &mut stack)?;
                }
                None => {
                    order.push(name.to_string());
                    stack.pop();
                }
            }
        }
    }
    Ok(order)
}

/// Pushes `name` on the walk unless it was seen already; a name that is not defined is an error.
fn enter<'a>(
    deps: &Deps<'a>,
    name: &str,
    needed_by: Option<&str>,
    done: &mut BTreeSet<&'a str>,
    stack: &mut Vec<(&'a str, usize)>,
) -> Result<(), String> {
    if done.contains(name) {
        return Ok(());
    }
    let Some((&name, _)) = deps.get_key_value(name) else {
        return Err(match needed_by {
            Some(by) => format!("{by} depends on `{name}`, which is not defined"),
            None => format!("no sidecar named `{name}`"),
        });
    };
    done.insert(name);
    stack.push((name, 0));
    Ok(())
}

/// Name → the names that depend on it directly. Hashed: it takes one entry per dependency, and
/// a dense graph of 1,000 has 160,000 (ordered maps spent most of a stop's planning comparing
/// names).
pub type Users<'a> = HashMap<&'a str, Vec<&'a str>>;

/// Who depends on whom, the other way round.
pub fn reverse<'a>(deps: &Deps<'a>) -> Users<'a> {
    let mut users: Users = HashMap::with_capacity(deps.len());
    for (&name, ds) in deps {
        for d in ds.iter() {
            users.entry(d.as_str()).or_default().push(name);
        }
    }
    users
}

/// The definitions that depend on any of `roots`, directly or not (roots excluded).
pub fn dependents(users: &Users, roots: &[&str]) -> BTreeSet<String> {
    let excluded: HashSet<&str> = roots.iter().copied().collect();
    let mut found: HashSet<&str> = HashSet::new();
    let mut frontier: Vec<&str> = roots.to_vec();
    while let Some(target) = frontier.pop() {
        for &name in users.get(target).into_iter().flatten() {
            if !excluded.contains(name) && found.insert(name) {
                frontier.push(name);
            }
        }
    }
    found.into_iter().map(str::to_string).collect()
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

    /// Names `n0 … n(len-1)`, each depending on the next.
    fn chain(len: usize) -> BTreeMap<String, Vec<String>> {
        (0..len).map(|i| (format!("n{i}"), if i + 1 < len { vec![format!("n{}", i + 1)] } else { vec![] })).collect()
    }

    #[test]
    fn deep_chains_do_not_overflow_the_stack() {
        let mut g = chain(100_000);
        let v = view(&g);
        assert!(check_cycles(&v).is_ok());
        let order = closure(&v, &["n0"]).unwrap();
        assert_eq!((order.len(), order[0].as_str(), order[99_999].as_str()), (100_000, "n99999", "n0"));
        assert_eq!(dependents(&reverse(&v), &["n99999"]).len(), 99_999);
        g.insert("n99999".into(), vec!["n0".into()]);
        let err = check_cycles(&view(&g)).unwrap_err();
        assert!(err.starts_with("dependency cycle: n0 -> n1 -> n2 -> ") && err.ends_with(" -> n99999 -> n0"));
    }

    #[test]
    fn dependents_are_transitive() {
        let g = graph(&[("web", &["api"]), ("api", &["db"]), ("db", &[]), ("other", &[])]);
        let d = dependents(&reverse(&view(&g)), &["db"]);
        assert_eq!(d.into_iter().collect::<Vec<_>>(), vec!["api", "web"]);
    }
}
