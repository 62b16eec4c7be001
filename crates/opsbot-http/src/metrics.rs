//! `/metrics` in Prometheus text format. Every crate records through the `metrics`
//! facade (requests and latencies here, jobs and sync durations in the engine, WeCom
//! API calls and errors in the WeCom client); this module installs the one recorder,
//! times each request by its route template, and adds gauges read at scrape time
//! (outbox depth, pool size).

use crate::auth::ClientIp;
use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// The process-wide recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was already installed; /metrics shows only this one's"
            );
        }
        handle
    })
}

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The method label: the standard methods by name, anything else as `other`. A client
/// chooses the method, so naming it as sent would let anyone add label sets (and memory
/// in the recorder) without end.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts and times every request by method, route template and status. Every label
/// comes from a fixed set (methods above, the router's templates, status codes), so the
/// number of series is bounded whatever clients send.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED.to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "opsbot_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "opsbot_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`, for the addresses in `web.metrics_allow` (default: this host).
pub async fn scrape(State(state): State<AppState>, ClientIp(ip): ClientIp) -> Response {
    let allowed = match &state.api {
        Some(ctx) => ctx.metrics_allow.iter().any(|n| n.contains(&ip)),
        // Without the API context the defaults apply: loopback only.
        None => ip.is_loopback(),
    };
    if !allowed {
        return (
            StatusCode::FORBIDDEN,
            "metrics are not served to this address\n",
        )
            .into_response();
    }
    let handle = handle();
    match state.outbox().outbox_depth().await {
        Ok(depth) => metrics::gauge!("opsbot_outbox_depth").set(depth as f64),
        Err(e) => tracing::warn!(error = %e, "outbox depth unavailable for /metrics"),
    }
    if let Some(ctx) = &state.api {
        if let Ok(pool) = ctx.engine.pool().await {
            metrics::gauge!("opsbot_pool_vms").set(pool.vms().count() as f64);
            metrics::gauge!("opsbot_pool_hosts").set(pool.inventory.hosts.len() as f64);
        }
    }
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
