//! Tasks built into the `pm` binary, usable from any project file with `runtime = "task"`.

mod echo;
mod schedule;

use pm_runtimes::task::Task;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The built-in tasks by name.
pub fn builtin() -> BTreeMap<String, Arc<dyn Task>> {
    BTreeMap::from([
        ("echo".to_string(), Arc::new(echo::Echo) as Arc<dyn Task>),
        ("schedule".to_string(), Arc::new(schedule::Schedule) as Arc<dyn Task>),
    ])
}
