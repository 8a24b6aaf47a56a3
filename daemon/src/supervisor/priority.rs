//! `priority`: the order of independent definitions within one start or stop. A definition's
//! effective priority is the highest of its own and its dependencies' effective priorities, so a
//! dependency never waits for its dependents. A start goes level by level upwards, a stop
//! downwards; with every priority the default 0 there is one level and nothing waits.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use pm_protocol::Definition;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Resolves once every definition of the earlier levels of a start or stop is through.
pub type Earlier = Shared<BoxFuture<'static, ()>>;

/// The effective priority of `roots` and of everything they depend on (and maybe of more), keyed
/// by `defs`' names.
/// Depth-first with an explicit stack: a chain may be far deeper than a thread's stack. A
/// dependency that is not defined counts for nothing.
pub fn effective<'a, 'r>(
    defs: &'a BTreeMap<String, Arc<Definition>>,
    roots: impl IntoIterator<Item = &'r str>,
) -> BTreeMap<&'a str, i32> {
    // Where every definition has the same priority (nobody set one, usually), so has everything
    // they depend on: no walk over every dependency.
    let mut all = defs.values().map(|d| d.priority);
    if let Some(first) = all.next()
        && all.all(|p| p == first)
    {
        return defs.keys().map(|name| (name.as_str(), first)).collect();
    }
    let mut priority: BTreeMap<&'a str, i32> = BTreeMap::new();
    let mut entered: BTreeSet<&'a str> = BTreeSet::new();
    // (definition, how many of its dependencies are entered).
    let mut stack: Vec<(&'a str, &'a Definition, usize)> = Vec::new();
    for root in roots {
        let Some((root, def)) = defs.get_key_value(root) else { continue };
        if !entered.insert(root) {
            continue;
        }
        stack.push((root, def, 0));
        while let Some((name, def, next)) = stack.last_mut() {
            match def.depends_on.get(*next) {
                Some(dep) => {
                    *next += 1;
                    if let Some((dep, dep_def)) = defs.get_key_value(dep)
                        && entered.insert(dep)
                    {
                        stack.push((dep, dep_def, 0));
                    }
                }
                None => {
                    let own = def.priority;
                    let raised =
                        def.depends_on.iter().filter_map(|d| priority.get(d.as_str())).fold(own, |a, &b| a.max(b));
                    priority.insert(name, raised);
                    stack.pop();
                }
            }
        }
    }
    priority
}

/// Definitions by (effective) priority, lowest level first.
pub fn levels<'a>(defs: impl IntoIterator<Item = (&'a str, i32)>) -> BTreeMap<i32, Vec<&'a str>> {
    let mut levels: BTreeMap<i32, Vec<&'a str>> = BTreeMap::new();
    for (def, priority) in defs {
        levels.entry(priority).or_default().push(def);
    }
    levels
}

/// For each definition past the first of `levels` (in the order they go): what it waits for, every
/// definition of the earlier levels through (`through` says when one level is). Each level's wait
/// chains on the previous one, so this is linear however many levels and definitions there are;
/// with one level it builds nothing.
pub fn after_earlier<'a>(
    levels: impl IntoIterator<Item = Vec<&'a str>>,
    through: impl Fn(&[&'a str]) -> BoxFuture<'static, ()>,
) -> BTreeMap<&'a str, Earlier> {
    let mut waits = BTreeMap::new();
    let mut earlier: Option<Earlier> = None;
    let mut levels = levels.into_iter().peekable();
    while let Some(level) = levels.next() {
        if let Some(earlier) = &earlier {
            waits.extend(level.iter().map(|&d| (d, earlier.clone())));
        }
        if levels.peek().is_some() {
            let (before, this) = (earlier.take(), through(&level));
            earlier = Some(
                async move {
                    if let Some(before) = before {
                        before.await;
                    }
                    this.await;
                }
                .boxed()
                .shared(),
            );
        }
    }
    waits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(list: &[(&str, i32, &[&str])]) -> BTreeMap<String, Arc<Definition>> {
        list.iter()
            .map(|(name, priority, deps)| {
                let mut d = Definition::new(vec!["x".into()]);
                d.priority = *priority;
                d.depends_on = deps.iter().map(|d| d.to_string()).collect();
                (name.to_string(), Arc::new(d))
            })
            .collect()
    }

    #[test]
    fn a_dependency_is_raised_to_the_highest_of_what_it_needs_never_lowered() {
        let d = defs(&[("web", 1, &["db", "ghost"]), ("db", 5, &[]), ("cache", -3, &[]), ("job", 0, &["cache"])]);
        let p = effective(&d, ["web", "job", "nope"]);
        assert_eq!(p.into_iter().collect::<Vec<_>>(), [("cache", -3), ("db", 5), ("job", 0), ("web", 5)]);
    }

    #[test]
    fn deep_chains_do_not_overflow_the_stack() {
        let names: Vec<String> = (0..100_000).map(|i| format!("n{i}")).collect();
        let d: BTreeMap<String, Arc<Definition>> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut def = Definition::new(vec!["x".into()]);
                def.depends_on = names.get(i + 1).cloned().into_iter().collect();
                def.priority = if i == 99_999 { 7 } else { 0 };
                (name.clone(), Arc::new(def))
            })
            .collect();
        let p = effective(&d, ["n0"]);
        assert_eq!((p.len(), p["n0"], p["n99999"]), (100_000, 7, 7));
    }

    #[tokio::test]
    async fn each_level_waits_for_every_earlier_one_and_one_level_waits_for_nothing() {
        let levels = levels([("a", 2), ("b", 0), ("c", 1), ("d", 0)]);
        assert_eq!(levels.values().cloned().collect::<Vec<_>>(), [vec!["b", "d"], vec!["c"], vec!["a"]]);
        let (tx, rx) = tokio::sync::watch::channel(Vec::<&str>::new());
        let through = |level: &[&'static str]| {
            let (tx, level) = (tx.clone(), level.to_vec());
            async move { tx.send_modify(|done| done.extend(level)) }.boxed()
        };
        let waits = after_earlier(levels.into_values(), through);
        assert_eq!(waits.keys().copied().collect::<Vec<_>>(), ["a", "c"]);
        waits["a"].clone().await;
        assert_eq!(*rx.borrow(), ["b", "d", "c"], "a waited for both lower levels, in order");
        assert!(after_earlier([vec!["x", "y"]], |_| async {}.boxed()).is_empty());
    }
}
