//! The HTTP surface of `opsbot serve`. Only this crate knows HTTP routing; handlers
//! (grouped by resource under `handlers/`) call into channels, the engine and the store.

mod handlers;

pub use handlers::agent::CmdbApi;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use opsbot_channels::wecom::WecomChannel;
use opsbot_store::Store;
use std::sync::Arc;

/// WeCom callbacks are small XML documents; anything bigger is not from WeCom.
pub const CALLBACK_BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub version: &'static str,
    /// `None` when no `[[wecom.apps]]` is configured.
    pub wecom: Option<Arc<WecomChannel>>,
    /// The CMDB endpoints (agent reports, asset queries); `None`: they answer 404.
    pub cmdb: Option<Arc<CmdbApi>>,
}

/// Serves `router` on `listener` until `shutdown` completes. Sets TCP_NODELAY on every
/// connection: replies are small and written in pieces, and Nagle's algorithm with the
/// peer's delayed ACK would hold them for ~40 ms (measured: callback p50 52 ms → see
/// README benchmarks).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    // Connect info: token allow-lists check the peer address.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

pub fn router(state: AppState) -> Router {
    let report_limit = state
        .cmdb
        .as_ref()
        .map_or(1024 * 1024, |c| c.max_report_bytes);
    Router::new()
        .route("/healthz", get(handlers::health::healthz))
        .route("/readyz", get(handlers::health::readyz))
        .route(
            "/wecom/{app}/callback",
            get(handlers::wecom::verify)
                .post(handlers::wecom::message)
                .layer(DefaultBodyLimit::max(CALLBACK_BODY_LIMIT)),
        )
        .route(
            "/api/v1/agent/report",
            post(handlers::agent::report).layer(DefaultBodyLimit::max(report_limit)),
        )
        .route("/api/v1/assets", get(handlers::agent::list))
        .route("/api/v1/assets/{name}", get(handlers::agent::get))
        .route(
            "/api/v1/assets/{name}/changes",
            get(handlers::agent::changes),
        )
        .with_state(state)
}
