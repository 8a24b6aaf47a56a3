//! pm's own project file, as `pm start -f` reads it (the environment's `${VAR}`s filled in).

use crate::config::ConfigError;
use crate::discover::{SourceFile, Translated};

pub fn read(src: &SourceFile<'_>) -> Result<Translated, ConfigError> {
    let env = |var: &str| std::env::var(var).ok();
    let project = crate::config::parse(src.path, src.text, &env)?;
    Ok(Translated { sidecars: project.sidecars.into_iter().collect(), untranslated: Vec::new() })
}
