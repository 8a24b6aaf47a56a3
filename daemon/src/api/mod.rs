//! The `pm.*` methods. The trait impl only delegates: each method lives in its own file.

mod apply;
mod connect;
mod delete;
mod events;
mod flush;
mod info;
mod logs;
mod ls;
mod map;
mod ping;
mod reload;
mod restart;
mod scale;
mod shutdown;
mod start;
mod status;
mod stop;
mod sync;

use crate::supervisor::{SupError, Supervisor};
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait};
use jsonrpsee::types::ErrorObjectOwned;
use pm_protocol::params::{StartParams, StopParams};
use pm_protocol::{DaemonInfo, Definition, DefinitionInfo, ErrorCode, InstanceStatus, PmApiServer};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

/// The daemon's API: the supervisor, who the daemon is, and how to stop it.
pub struct Api {
    pub sup: Supervisor,
    pub mesh: crate::mesh::Mesh,
    pub info: DaemonInfo,
    pub shutdown: CancellationToken,
}

/// Maps a supervisor error to its stable JSON-RPC code.
fn rpc_err(e: SupError) -> ErrorObjectOwned {
    let code = match e {
        SupError::UnknownName(_) => ErrorCode::UnknownName,
        SupError::Invalid(_) => ErrorCode::InvalidDefinition,
        SupError::StartFailed(_) => ErrorCode::StartFailed,
        SupError::AlreadyExists(_) => ErrorCode::AlreadyExists,
        SupError::ShuttingDown => ErrorCode::ShuttingDown,
        // The server could not do its part: the closest code until the state has its own.
        SupError::Persist(_) => ErrorCode::StateNotSaved,
    };
    code.err(e.to_string())
}

#[async_trait]
impl PmApiServer for Api {
    async fn ping(&self) -> RpcResult<DaemonInfo> {
        Ok(ping::ping(self))
    }
    async fn map(&self, name: String, definition: Definition, replace: bool) -> RpcResult<DefinitionInfo> {
        map::map(self, name, definition, replace).await
    }
    async fn apply(&self, definitions: BTreeMap<String, Definition>, start: bool) -> RpcResult<Vec<InstanceStatus>> {
        apply::apply(self, definitions, start).await
    }
    async fn sync(&self, params: pm_protocol::sync::SyncParams) -> RpcResult<pm_protocol::sync::SyncReport> {
        sync::sync(self, params).await
    }
    async fn ls(&self) -> RpcResult<Vec<DefinitionInfo>> {
        Ok(ls::ls(self))
    }
    async fn start(&self, params: StartParams) -> RpcResult<Vec<InstanceStatus>> {
        start::start(self, params).await
    }
    async fn stop(&self, params: StopParams) -> RpcResult<Vec<InstanceStatus>> {
        stop::stop(self, params).await
    }
    async fn flush(&self, name: String) -> RpcResult<Vec<String>> {
        flush::flush(self, &name).await
    }
    async fn restart(&self, name: String) -> RpcResult<Vec<InstanceStatus>> {
        restart::restart(self, &name).await
    }
    async fn reload(&self, name: String) -> RpcResult<pm_protocol::reload::Reloaded> {
        reload::reload(self, &name).await
    }
    async fn scale(&self, name: String, instances: u32) -> RpcResult<Vec<InstanceStatus>> {
        scale::scale(self, &name, instances).await
    }
    async fn delete(&self, name: String) -> RpcResult<Vec<String>> {
        delete::delete(self, &name).await
    }
    async fn status(&self, name: Option<String>) -> RpcResult<Vec<InstanceStatus>> {
        status::status(self, name.as_deref()).await
    }
    async fn connect(&self, name: String) -> RpcResult<pm_protocol::status::ConnectInfo> {
        connect::connect(self, &name)
    }
    async fn info(&self, name: String) -> RpcResult<Vec<pm_protocol::info::InstanceInfo>> {
        info::info(self, &name).await
    }
    async fn shutdown(&self) -> RpcResult<()> {
        shutdown::shutdown(self).await
    }
    async fn logs(
        &self,
        pending: PendingSubscriptionSink,
        name: String,
        lines: usize,
        follow: bool,
        chunks: Option<bool>,
        filter: Option<pm_protocol::status::LogFilter>,
    ) -> SubscriptionResult {
        let asked =
            logs::Asked { name, lines, follow, chunks: chunks.unwrap_or(false), filter: filter.unwrap_or_default() };
        logs::logs(self, pending, asked).await
    }
    async fn events(&self, pending: PendingSubscriptionSink, name: Option<String>) -> SubscriptionResult {
        events::events(self, pending, name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::Home;
    use crate::supervisor::Context;
    use std::sync::Arc;

    /// `rpc.discover` lists what the daemon serves: the methods of this module, and the
    /// session's (`pm.auth`, `pm.register`) and `rpc.discover`, which the dispatcher serves.
    #[tokio::test]
    async fn the_openrpc_document_lists_exactly_the_methods_served() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let runtime = Arc::new(pm_runtimes::fake::RecordingRuntime::default());
        let sup = Supervisor::new(Context::for_tests(runtime, &home), home.state(), home.state_backup());
        let info = DaemonInfo {
            version: "0".into(),
            pid: 1,
            home: dir.path().into(),
            started_at_ms: 0,
            endpoints: Vec::new(),
            notice: None,
        };
        let api = Api { sup, mesh: Default::default(), info, shutdown: CancellationToken::new() };
        let mut served: Vec<String> = api.into_rpc().method_names().map(String::from).collect();
        served.extend(["pm.auth", "pm.register", pm_protocol::openrpc::DISCOVER].map(String::from));
        served.sort();
        let document: serde_json::Value = serde_json::from_str(crate::server::dispatch::api_document()).unwrap();
        let mut listed: Vec<String> =
            pm_protocol::openrpc::method_names(&document).into_iter().map(String::from).collect();
        listed.sort();
        assert_eq!(listed, served);
    }
}
