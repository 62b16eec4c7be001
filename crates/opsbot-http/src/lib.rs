//! The HTTP surface of `opsbot serve`. Only this crate knows HTTP routing; handlers
//! (grouped by resource under `handlers/`) call into channels, the engine and the store.

mod handlers;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use opsbot_channels::mp::MpChannel;
use opsbot_channels::wecom::WecomChannel;
use opsbot_channels::wecom_bot::BotChannel;
use opsbot_store::Store;
use std::sync::Arc;

/// Callbacks (WeCom apps and robots, WeChat accounts) are small XML or JSON documents;
/// anything bigger is not from WeCom or WeChat.
pub const CALLBACK_BODY_LIMIT: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub version: &'static str,
    /// `None` when no `[[wecom.apps]]` is configured.
    pub wecom: Option<Arc<WecomChannel>>,
    /// `None` when no `[[wecom.bots]]` is configured.
    pub wecom_bots: Option<Arc<BotChannel>>,
    /// `None` when no `[[wechat.mp]]` is configured.
    pub wechat: Option<Arc<MpChannel>>,
    /// `None` when no `[alerts]` section is configured.
    pub alerts: Option<Arc<opsbot_alerts::Gateway>>,
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
    // The peer address reaches handlers (alert sources' IP allow-lists).
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}

pub fn router(state: AppState) -> Router {
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
            "/wecom/bot/{bot}/callback",
            get(handlers::wecom_bot::verify)
                .post(handlers::wecom_bot::message)
                .layer(DefaultBodyLimit::max(CALLBACK_BODY_LIMIT)),
        )
        .route(
            "/wechat/{account}/callback",
            get(handlers::wechat::verify)
                .post(handlers::wechat::message)
                .layer(DefaultBodyLimit::max(CALLBACK_BODY_LIMIT)),
        )
        // The handler reads the body itself, within alerts.max_body_bytes.
        .route(
            "/alerts/{source}",
            axum::routing::get(handlers::alerts::receive).post(handlers::alerts::receive),
        )
        .with_state(state)
}
