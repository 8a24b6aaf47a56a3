// TEMPORARY until the project-file module lands.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
pub struct Project {
    pub path: PathBuf,
    pub sidecars: BTreeMap<String, pm_protocol::Definition>,
}
pub fn find(dir: &Path) -> anyhow::Result<PathBuf> {
    Ok(dir.join("pm.toml"))
}
pub fn load(path: &Path, _env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Project> {
    let text = std::fs::read_to_string(path)?;
    #[derive(serde::Deserialize)]
    struct F {
        sidecars: BTreeMap<String, pm_protocol::Definition>,
    }
    let f: F = toml::from_str(&text)?;
    Ok(Project { path: path.into(), sidecars: f.sidecars })
}
pub fn json_schema() -> serde_json::Value {
    serde_json::Value::Null
}
