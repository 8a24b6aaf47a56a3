//! `pm.connect`: how to reach a sidecar, through the daemon and directly (akala's `connect`).

use super::{Api, rpc_err};
use jsonrpsee::core::RpcResult;
use pm_protocol::status::{ConnectInfo, InstanceEndpoint};

pub fn connect(api: &Api, name: &str) -> RpcResult<ConnectInfo> {
    let instances = api.sup.status(Some(name)).map_err(rpc_err)?;
    let instances = instances
        .into_iter()
        .map(|s| {
            let registration = api.mesh.registration(&s.name);
            InstanceEndpoint {
                registered: registration.is_some(),
                methods: registration.as_ref().map(|r| r.methods.to_vec()).unwrap_or_default(),
                direct: registration.and_then(|r| r.endpoint.clone()),
                instance: s.name,
                state: s.state,
                port: s.port,
            }
        })
        .collect();
    Ok(ConnectInfo { name: name.to_string(), via_daemon: api.info.endpoints.clone(), instances })
}
