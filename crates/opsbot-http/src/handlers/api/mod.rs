//! The REST API under `/api/v1`, one module per resource. Reads come from the engine's
//! in-memory pool view, filtered by the caller's scopes; operations go through the
//! engine's structured entry point (same permissions, validation, jobs and audit as
//! chat). Errors are `{error, message}` ([`crate::error::ApiError`]).

pub mod alerts;
pub mod audit;
pub mod changes;
pub mod clusters;
pub mod datacenters;
pub mod datastores;
pub mod deploys;
pub mod dto;
pub mod hosts;
pub mod jobs;
pub mod kube;
pub mod networks;
mod objects;
pub mod openapi;
pub mod services;
pub mod sync;
pub mod templates;
pub mod vms;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The largest page a list returns.
pub const MAX_PER_PAGE: u32 = 500;
pub const DEFAULT_PER_PAGE: u32 = 50;
/// Request bodies are small JSON documents.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The API's routes, to nest at `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::json))
        .route("/docs", get(openapi::page))
        .route("/datacenters", get(datacenters::list))
        .route("/datacenters/{provider}/{id}", get(datacenters::get))
        .route("/clusters", get(clusters::list))
        .route("/clusters/{provider}/{id}", get(clusters::get))
        .route("/hosts", get(hosts::list))
        .route("/hosts/{provider}/{id}", get(hosts::get))
        .route("/vms", get(vms::list).post(vms::clone))
        .route("/vms/{provider}/{id}", get(vms::get))
        .route("/vms/{provider}/{id}/actions", post(vms::act))
        .route("/services", get(services::list))
        .route("/datastores", get(datastores::list))
        .route("/datastores/{provider}/{id}", get(datastores::get))
        .route("/networks", get(networks::list))
        .route("/networks/{provider}/{id}", get(networks::get))
        .route("/templates", get(templates::list))
        .route("/templates/{number}", get(templates::get))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/sync", post(sync::start))
        .route("/audit", get(audit::list))
        .route("/changes", get(changes::list))
        .route("/alerts", get(alerts::list))
        .route("/alerts/{id}", get(alerts::get))
        .route("/dead-letters", get(alerts::dead_letters))
        .route(
            "/projects",
            get(deploys::projects).post(deploys::put_project),
        )
        .route("/projects/{name}", get(deploys::project))
        .route("/projects/{name}/rollback", post(deploys::rollback))
        .route("/k8s/clusters", get(kube::clusters))
        .route("/k8s/workloads", get(kube::workloads))
        .route(
            "/k8s/workloads/{provider}/{cluster}/{namespace}/{name}/{action}",
            post(kube::act),
        )
        .route("/k8s/pods", get(kube::pods))
        .route(
            "/k8s/pods/{provider}/{cluster}/{namespace}/{name}/log",
            get(kube::log),
        )
        .route(
            "/k8s/events/{provider}/{cluster}/{namespace}/{name}",
            get(kube::events),
        )
        .route("/k8s/nodes", get(kube::nodes))
        .route("/builds", get(deploys::builds).post(deploys::start_build))
        .route("/builds/{id}", get(deploys::build))
        .route("/builds/{id}/log", get(deploys::build_log))
        .route(
            "/releases",
            get(deploys::releases).post(deploys::create_release),
        )
        .route("/releases/{id}", get(deploys::release))
        .route("/releases/{id}/logs", get(deploys::release_logs))
        .route("/releases/{id}/{action}", post(deploys::act))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint; see /api/v1/openapi.json")
}

/// Query parameters, with unknown or mistyped ones refused as `{error, message}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request(format!("bad query string: {}", e.body_text()))
            })
    }
}

/// Path parameters, a mistyped one (`/jobs/abc`) refused as `{error, message}` like every
/// other refusal of the API, not as axum's plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: axum::extract::rejection::PathRejection| {
                ApiError::bad_request(format!("bad path: {}", e.body_text()))
            })
    }
}

/// A JSON body; malformed JSON, wrong types and unknown fields are refused clearly.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| ApiJson(j.0))
            .map_err(|e: JsonRejection| {
                use axum::http::StatusCode;
                let (status, code) = match &e {
                    JsonRejection::MissingJsonContentType(_) => {
                        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                    }
                    JsonRejection::JsonDataError(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
                    }
                    JsonRejection::BytesRejection(_) => {
                        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
                    }
                    _ => (StatusCode::BAD_REQUEST, "bad_request"),
                };
                ApiError::new(status, code, e.body_text())
            })
    }
}

/// `page` (from 1) and `per_page` (1..=500, default 50).
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct Paging {
    #[param(minimum = 1, example = 1)]
    pub page: u32,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: u32,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

impl Paging {
    /// From a query's optional `page` and `per_page`, checked.
    pub fn from_parts(page: Option<u32>, per_page: Option<u32>) -> Result<Paging, ApiError> {
        Paging {
            page: page.unwrap_or(1),
            per_page: per_page.unwrap_or(DEFAULT_PER_PAGE),
        }
        .check()
    }

    pub fn check(self) -> Result<Paging, ApiError> {
        if self.page == 0 {
            return Err(ApiError::bad_request("page starts at 1"));
        }
        if self.per_page == 0 || self.per_page > MAX_PER_PAGE {
            return Err(ApiError::bad_request(format!(
                "per_page must be 1..={MAX_PER_PAGE} (got {})",
                self.per_page
            )));
        }
        Ok(self)
    }

    pub fn offset(self) -> usize {
        (self.page as usize - 1) * self.per_page as usize
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub per_page: u32,
    /// How many match in all (lists from the pool), or absent (logs, paged by the store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    /// Whether a next page exists.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Cuts one page out of everything that matched.
    pub fn of<U>(all: Vec<U>, paging: Paging, map: impl FnMut(U) -> T) -> Page<T> {
        let total = all.len();
        let items: Vec<T> = all
            .into_iter()
            .skip(paging.offset())
            .take(paging.per_page as usize)
            .map(map)
            .collect();
        Page {
            has_more: paging.offset() + items.len() < total,
            items,
            page: paging.page,
            per_page: paging.per_page,
            total: Some(total),
        }
    }
}

/// Case-insensitive equality for optional filters.
pub(crate) fn matches(filter: &Option<String>, value: &str) -> bool {
    filter
        .as_ref()
        .is_none_or(|f| f.eq_ignore_ascii_case(value))
}
