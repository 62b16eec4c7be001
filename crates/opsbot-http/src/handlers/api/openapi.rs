//! The OpenAPI document (`/api/v1/openapi.json`) generated from the handlers' own
//! annotations, and a browsable page of it (`/api/v1/docs`) rendered on the server
//! from the same document: no script, nothing fetched from elsewhere.

use super::dto::*;
use super::Page;
use crate::error::ErrorBody;
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "opsbot REST API", description = "The resource pool and the chat's VM operations, with the chat's permissions. Authenticate with `Authorization: Bearer <token>` from `opsbot token create --user ID`."),
    paths(
        super::datacenters::list, super::datacenters::get,
        super::clusters::list, super::clusters::get,
        super::hosts::list, super::hosts::get,
        super::vms::list, super::vms::get, super::vms::act, super::vms::clone,
        super::services::list,
        super::datastores::list, super::datastores::get,
        super::networks::list, super::networks::get,
        super::templates::list, super::templates::get,
        super::jobs::list, super::jobs::get, super::jobs::cancel,
        super::sync::start,
        super::audit::list,
        super::changes::list,
        super::alerts::list, super::alerts::get, super::alerts::dead_letters,
        super::deploys::projects, super::deploys::project, super::deploys::put_project,
        super::deploys::rollback,
        super::deploys::builds, super::deploys::build, super::deploys::start_build,
        super::deploys::build_log,
        super::deploys::releases, super::deploys::release, super::deploys::create_release,
        super::deploys::act, super::deploys::release_logs,
        super::kube::clusters, super::kube::workloads, super::kube::pods, super::kube::nodes,
        super::kube::act, super::kube::log, super::kube::events,
    ),
    components(schemas(
        ErrorBody, Accepted, Planned, super::dto::CancelRequested,
        super::vms::ActionBody, super::vms::CloneBody,
        Page<VmDto>, Page<HostDto>, Page<JobDto>, Page<super::services::ServiceDto>,
        Page<super::deploys::BuildDto>, Page<super::deploys::OrderDto>,
        super::deploys::ProjectDto, super::deploys::ReleaseDto, super::deploys::Done,
        super::kube::KubeClusterDto, super::kube::WorkloadDto, super::kube::PodDto,
        super::kube::NodeDto, super::kube::WorkloadActionBody,
    )),
    modifiers(&Bearer),
    tags(
        (name = "inventory", description = "The resource pool: datacenters, clusters, hosts, datastores, networks, templates"),
        (name = "vms", description = "VMs: list, detail, operations, clones; services (VMs by business system)"),
        (name = "operations", description = "Pool sync"),
        (name = "jobs", description = "Jobs started by operations: state and progress"),
        (name = "history", description = "Audit log and change history"),
        (name = "alerts", description = "The alert gateway: alerts taken in, dead letters"),
        (name = "deploys", description = "Deploys: projects, builds, release orders (发布单) with approvals, logs as server-sent events"),
        (name = "kubernetes", description = "Kubernetes: clusters, workloads, pods and nodes from the watched pool; scale, restart and rollback as jobs; logs and events"),
    )
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("opsbot token create --user ID"))
                    .build(),
            ),
        );
    }
}

fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// `GET /api/v1/openapi.json` (public: it describes, it discloses nothing).
pub async fn json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// `GET /api/v1/docs`: the document as a page.
pub async fn page(State(state): State<AppState>) -> Response {
    let doc: serde_json::Value = serde_json::from_str(document()).expect("our own JSON");
    let templates = match &state.api {
        Some(ctx) => ctx.templates.clone(),
        None => crate::web::render::Templates::new(),
    };
    let page = match templates.render("api_docs.html", minijinja::context! { doc => doc }) {
        Ok(html) => Html(html).into_response(),
        Err(e) => crate::web::render::error_page(&e),
    };
    crate::web::deny_framing(page).await
}
