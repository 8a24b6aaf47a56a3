//! `pm.info`: everything about the instances a name stands for, a bounded number of them.

use super::{Api, connect, rpc_err};
use crate::home::Home;
use jsonrpsee::core::RpcResult;
use pm_protocol::info::{InstanceInfo, LogPaths, MAX_INFO_INSTANCES};
use pm_protocol::{ErrorCode, LogStream};

pub async fn info(api: &Api, name: &str) -> RpcResult<Vec<InstanceInfo>> {
    let count = api.sup.resolve(name).map_err(rpc_err)?.len();
    if count > MAX_INFO_INSTANCES {
        return Err(ErrorCode::InvalidParams.err(format!(
            "`{name}` stands for {count} instances and pm info shows at most {MAX_INFO_INSTANCES}: \
             name one of them (`pm status {name}` lists them)"
        )));
    }
    let home = Home::new(&api.info.home);
    let details = api.sup.info(name).await.map_err(rpc_err)?;
    details
        .into_iter()
        .map(|d| {
            let instance = &d.status.name;
            let logs = LogPaths {
                stdout: home.log_file(instance, LogStream::Out),
                stderr: home.log_file(instance, LogStream::Err),
            };
            Ok(InstanceInfo {
                endpoints: connect::connect(api, instance)?,
                logs,
                spec: (*d.spec).clone(),
                args: d.args,
                history: d.history,
                exits: d.exits,
                status: d.status,
            })
        })
        .collect()
}
