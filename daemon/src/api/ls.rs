//! `pm.ls`: every definition with its instances.

use super::Api;
use pm_protocol::DefinitionInfo;

pub fn ls(api: &Api) -> Vec<DefinitionInfo> {
    api.sup.ls()
}
