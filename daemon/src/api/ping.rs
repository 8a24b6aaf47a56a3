//! `pm.ping`: who and where the daemon is; the CLI's "is it up" check.

use super::Api;
use pm_protocol::DaemonInfo;

pub fn ping(api: &Api) -> DaemonInfo {
    api.info.clone()
}
