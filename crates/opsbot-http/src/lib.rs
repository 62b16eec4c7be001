//! The HTTP surface of `opsbot serve`. Only this crate knows HTTP routing; handlers
//! (grouped by resource under `handlers/`) call into channels, the engine and the store.
//! The REST API lives in `handlers/api/`, the web UI in `web/`, both authenticated by
//! [`auth::Authenticated`].

pub mod auth;
pub mod budget;
pub mod config;
pub mod context;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod refusals;
pub mod server;
pub mod web;

pub use config::WebConfig;
pub use context::ApiContext;
pub use server::{serve_with, ServeLimits};

pub use handlers::agent::CmdbApi;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use opsbot_channels::ChannelRegistry;
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
    /// The configured chat channels (WeCom apps, robots, WeChat accounts) by kind; a
    /// kind not registered answers its callbacks 404.
    pub channels: ChannelRegistry,
    /// `None` when no `[alerts]` section is configured.
    pub alerts: Option<Arc<opsbot_alerts::Gateway>>,
    /// The REST API and web UI; `None` serves neither (404).
    pub api: Option<Arc<ApiContext>>,
    /// The CMDB endpoints (agent reports, asset queries); `None`: they answer 404.
    pub cmdb: Option<Arc<CmdbApi>>,
}

impl AppState {
    /// What readiness asks.
    pub fn health(&self) -> &dyn opsbot_store::Health {
        self.store.as_ref()
    }

    /// The outbox, whose depth `/metrics` reports.
    pub fn outbox(&self) -> &dyn opsbot_store::OutboxStore {
        self.store.as_ref()
    }
}

/// A JSON response, serialized straight from borrowed data.
pub fn json<T: serde::Serialize>(value: &T) -> axum::response::Response {
    use axum::response::IntoResponse;
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error::ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("could not encode the answer: {e}"),
        )
        .into_response(),
    }
}

/// Serves `router` on `listener` until `shutdown` completes, with the default
/// [`ServeLimits`] (see [`server::serve_with`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve_with(listener, router, ServeLimits::default(), shutdown).await
}

pub fn router(state: AppState) -> Router {
    metrics::handle();
    let report_limit = state
        .cmdb
        .as_ref()
        .map_or(1024 * 1024, |c| c.max_report_bytes);
    let mut router = Router::new();
    for &kind in opsbot_channels::KINDS {
        router = router.route(kind.route, handlers::callback::route(kind));
    }
    router
        .route("/healthz", get(handlers::health::healthz))
        .route("/readyz", get(handlers::health::readyz))
        .route("/metrics", get(metrics::scrape))
        .nest("/api/v1", handlers::api::routes())
        .merge(web::routes())
        // The handler reads the body itself, within alerts.max_body_bytes.
        .route(
            "/alerts/{source}",
            axum::routing::get(handlers::alerts::receive).post(handlers::alerts::receive),
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
        // `layer`, not `route_layer`: requests no route matches are counted too (as
        // `unmatched`), and so are unknown methods on known routes (as `other`).
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::middleware::map_response(nosniff))
        .with_state(state)
}

/// Every answer is what its Content-Type says: a browser must not guess HTML into a
/// JSON error or a callback's text and run it.
async fn nosniff(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}
