//! `/api/v1/projects`, `/builds`, `/releases`: the deploy subsystem (seed 003) over
//! HTTP. Reads come from the deploy store, scoped like chat: a project, build or order
//! the caller may not see reads as absent (404) and is left out of lists. Every action
//! (构建, 发布, 批准, 驳回, 暂停, 继续, 终止, 重试, 回滚) goes through the engine's
//! `run_command`, so it is permission-checked, audited and run as a job exactly as in
//! chat. Logs stream as server-sent events, resumable with `Last-Event-ID`.

use super::dto::Accepted;
use super::{ApiJson, ApiPath, ApiQuery, Page};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use opsbot_core::chat::Requester;
use opsbot_deploy::deploys::scope;
use opsbot_deploy::model::{OrderKind, OrderState};
use opsbot_deploy::orders::names;
use opsbot_deploy::{Deploys, Project, Refused};
use opsbot_engine::{Caller, Ran, Refusal, Viewer};
use opsbot_store::deploy::{
    BuildRecord, DeployStore, HostRunRecord, LogChunk, LogOf, OrderQuery, OrderRecord,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use utoipa::{IntoParams, ToSchema};

/// The API (or web) caller as the deploy subsystem asks about them: the engine's
/// policy decides, exactly as for a chat message from the same user.
pub struct ApiRequester {
    viewer: Viewer,
    channel: String,
}

impl ApiRequester {
    pub fn new(engine: &opsbot_engine::Engine, caller: &Caller) -> ApiRequester {
        ApiRequester {
            viewer: engine.viewer(caller),
            channel: caller.channel.clone(),
        }
    }

    pub fn of(auth: &Authenticated) -> ApiRequester {
        Self::new(&auth.context().engine, &auth.caller())
    }

    /// May the caller use any of `commands` on project `project`?
    pub fn sees(&self, commands: &[&str], project: &str) -> bool {
        let at = scope(project);
        commands.iter().any(|c| self.viewer.may_at(c, &at))
    }

    pub fn is_admin(&self) -> bool {
        self.viewer.is_admin()
    }
}

impl Requester for ApiRequester {
    fn user(&self) -> &str {
        self.viewer.user()
    }
    fn may_at(&self, command: &str, scope: &str) -> bool {
        self.viewer.may_at(command, scope)
    }
    fn channel(&self) -> &str {
        &self.channel
    }
    fn roles(&self) -> Vec<String> {
        self.viewer.roles()
    }
}

/// The commands whose holders see a project's builds.
pub const BUILD_READERS: [&str; 2] = [names::BUILD, names::DEPLOY];
/// ... its orders.
pub const ORDER_READERS: [&str; 1] = [names::ORDERS];
/// ... its logs.
pub const LOG_READERS: [&str; 1] = [names::LOGS];

/// The deploy subsystem of this server, or 404 when it has none.
pub fn deploys(auth: &Authenticated) -> ApiResult<Arc<Deploys>> {
    auth.context()
        .deploys
        .clone()
        .ok_or_else(|| ApiError::not_found("deploys are not enabled on this server"))
}

fn refused(r: Refused) -> ApiError {
    match r {
        Refused::Invalid(t) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", t),
        Refused::Failed(t) => ApiError::unavailable("reading deploys", &t),
    }
}

/// A project as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectDto {
    #[schema(example = "shop")]
    pub name: String,
    /// `git` or `svn`.
    pub repo_kind: String,
    /// The repository, any credentials in it replaced by `***`.
    pub repo_url: String,
    pub branch: String,
    /// Hosts named in the definition (selectors and scale-outs add more).
    pub hosts: Vec<String>,
    pub approval_required: bool,
    /// What each host runs now.
    pub deployed: Vec<DeployedDto>,
    /// The newest order, if any.
    pub last_order: Option<OrderDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeployedDto {
    pub host: String,
    /// The release (order id) `current` points at.
    pub version: i64,
    pub build: i64,
    pub at: DateTime<Utc>,
}

/// A build.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuildDto {
    pub id: i64,
    pub project: String,
    pub reference: String,
    pub revision: String,
    /// `running`, `succeeded`, `failed`, `interrupted`.
    pub state: String,
    pub artefact: Option<String>,
    pub artefact_size: Option<i64>,
    pub changelog: String,
    pub error: Option<String>,
    pub user: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The build's log as server-sent events.
    pub log_url: String,
}

impl From<BuildRecord> for BuildDto {
    fn from(b: BuildRecord) -> Self {
        BuildDto {
            log_url: format!("/api/v1/builds/{}/log", b.id),
            id: b.id,
            project: b.project,
            reference: b.reference,
            revision: b.revision,
            state: b.state,
            artefact: b.artefact,
            artefact_size: b.artefact_size,
            changelog: b.changelog,
            error: b.error,
            user: b.user,
            created_at: b.created_at,
            finished_at: b.finished_at,
        }
    }
}

/// A release order (发布单).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderDto {
    pub id: i64,
    pub project: String,
    /// `release`, `rollback`, `retry`, `scale_out`, `scale_in`.
    pub kind: String,
    /// The kind in words (发布, 回滚, …).
    pub kind_label: String,
    pub build: Option<i64>,
    pub version: Option<i64>,
    /// 待审批, 待发布, 发布中, 暂停, 成功, 部分失败, 失败, 已回滚, 已驳回, 已终止, 已中断, 已过期.
    #[schema(example = "待审批")]
    pub state: String,
    /// Nothing more happens to it.
    pub finished: bool,
    pub user: String,
    pub approver: Option<String>,
    pub reason: Option<String>,
    pub batch: i32,
    pub batches: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What the state allows now: approve, reject, pause, resume, abort, retry, rollback.
    pub actions: Vec<&'static str>,
}

impl From<OrderRecord> for OrderDto {
    fn from(o: OrderRecord) -> Self {
        let state = OrderState::parse(&o.state);
        OrderDto {
            actions: actions(&o),
            kind_label: OrderKind::parse(&o.kind)
                .map(|k| k.label().to_string())
                .unwrap_or_else(|| o.kind.clone()),
            finished: state.is_none_or(OrderState::is_final),
            id: o.id,
            project: o.project,
            kind: o.kind,
            build: o.build,
            version: o.version,
            state: o.state,
            user: o.user,
            approver: o.approver,
            reason: o.reason,
            batch: o.batch,
            batches: o.batches,
            created_at: o.created_at,
            updated_at: o.updated_at,
            expires_at: o.expires_at,
            finished_at: o.finished_at,
        }
    }
}

/// One host of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostRunDto {
    pub host: String,
    pub address: String,
    /// 0-based.
    pub batch: i32,
    /// `pending`, `running`, `succeeded`, `failed`, `skipped`, `interrupted`.
    pub state: String,
    pub state_label: String,
    pub step: String,
    pub exit_code: Option<i32>,
    pub previous_version: Option<i64>,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<HostRunRecord> for HostRunDto {
    fn from(h: HostRunRecord) -> Self {
        HostRunDto {
            state_label: opsbot_deploy::model::HostState::parse(&h.state)
                .map(|s| s.label().to_string())
                .unwrap_or_else(|| h.state.clone()),
            host: h.host,
            address: h.address,
            batch: h.batch,
            state: h.state,
            step: h.step,
            exit_code: h.exit_code,
            previous_version: h.previous_version,
            error: h.error,
            started_at: h.started_at,
            finished_at: h.finished_at,
        }
    }
}

/// An order with its hosts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseDto {
    pub order: OrderDto,
    pub hosts: Vec<HostRunDto>,
    /// The order's log (all hosts) as server-sent events; `?host=` for one.
    pub logs_url: String,
}

/// A command that answered at once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    #[schema(example = "批准")]
    pub command: &'static str,
    pub message: String,
}

/// An action on an order, by its path name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Approve,
    Reject,
    Pause,
    Resume,
    Abort,
    Retry,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Approve,
        Action::Reject,
        Action::Pause,
        Action::Resume,
        Action::Abort,
        Action::Retry,
    ];

    pub fn parse(s: &str) -> Option<Action> {
        Self::ALL.into_iter().find(|a| a.key() == s)
    }

    pub fn key(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Abort => "abort",
            Action::Retry => "retry",
        }
    }

    /// The chat command it is.
    pub fn command(self) -> &'static str {
        match self {
            Action::Approve => names::APPROVE,
            Action::Reject => names::REJECT,
            Action::Pause => names::PAUSE,
            Action::Resume => names::RESUME,
            Action::Abort => names::ABORT,
            Action::Retry => names::RETRY,
        }
    }
}

/// What `o`'s state allows (the engine still decides; this is what to offer).
pub fn actions(o: &OrderRecord) -> Vec<&'static str> {
    use OrderState::*;
    let Some(state) = OrderState::parse(&o.state) else {
        return Vec::new();
    };
    let mut out: Vec<&'static str> = match state {
        Pending => vec!["approve", "reject", "abort"],
        Ready => vec!["resume", "abort"],
        Running => vec!["pause", "abort"],
        Paused => vec!["resume", "abort"],
        Interrupted => vec!["resume", "abort", "retry"],
        PartlyFailed | Failed | Aborted => vec!["retry"],
        Succeeded | RolledBack | Rejected | Expired => Vec::new(),
    };
    if state.is_final() && o.kind == OrderKind::Release.as_str() && state != Rejected {
        out.push("rollback");
    }
    out
}

/// Text that may go into a command: no control characters (a NUL, a newline would
/// change what the audit row says), and bounded.
pub fn check_text(what: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{what} contains control characters"),
        ));
    }
    if value.chars().count() > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{what} is longer than {max} characters"),
        ));
    }
    Ok(())
}

/// What the engine answered, as the API says it: 200 `{command, message}` or 202 with
/// the job's `status_url`.
pub fn ran(r: Ran) -> Response {
    match r {
        Ran::Done { command, message } => json(&Done { command, message }),
        Ran::Started {
            command,
            job,
            message,
        } => (
            StatusCode::ACCEPTED,
            json(&Accepted {
                job: job.0,
                command,
                message,
                status_url: format!("/api/v1/jobs/{}", job.0),
            }),
        )
            .into_response(),
    }
}

/// Runs chat command `command` for `auth` through the engine. A refusal on an object the
/// caller may see but not act on is 403; on an order whose state does not allow it 409.
pub async fn run(
    auth: &Authenticated,
    command: &str,
    args: Vec<String>,
    on: Option<&OrderRecord>,
) -> ApiResult<Ran> {
    let engine = &auth.context().engine;
    let result = engine
        .run_command(
            &auth.caller(),
            command,
            args,
            Arc::new(opsbot_engine::Discard),
        )
        .await;
    result.map_err(|r| match (r, on) {
        (Refusal::Invalid(text), Some(o)) => {
            let req = ApiRequester::of(auth);
            if !req.sees(&[command], &o.project) {
                ApiError::forbidden(text)
            } else if OrderState::parse(&o.state).is_some_and(OrderState::is_final)
                || Action::ALL
                    .iter()
                    .find(|a| a.command() == command)
                    .is_some_and(|a| !actions(o).contains(&a.key()))
            {
                ApiError::new(StatusCode::CONFLICT, "conflict", text)
            } else {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", text)
            }
        }
        (r, _) => ApiError::from(r),
    })
}

fn not_found_order(id: i64) -> ApiError {
    ApiError::not_found(format!("no release order #{id} that you may see"))
}

/// Order `id` if the caller may see it (else 404, as for a missing one).
pub async fn visible_order(
    d: &Deploys,
    req: &ApiRequester,
    id: i64,
    commands: &[&str],
) -> ApiResult<OrderRecord> {
    match d.store().order_get(id).await? {
        Some(o) if req.sees(commands, &o.project) => Ok(o),
        _ => Err(not_found_order(id)),
    }
}

/// Build `id` if the caller may see it.
pub async fn visible_build(d: &Deploys, req: &ApiRequester, id: i64) -> ApiResult<BuildRecord> {
    match d.store().build_get(id).await? {
        Some(b) if req.sees(&BUILD_READERS, &b.project) => Ok(b),
        _ => Err(ApiError::not_found(format!(
            "no build #{id} that you may see"
        ))),
    }
}

/// A project with what it runs and its newest order.
pub async fn project_dto(d: &Deploys, p: &Project) -> ApiResult<ProjectDto> {
    let deployed = d.store().deployed(&p.name).await?;
    let last = d
        .store()
        .order_list(&OrderQuery {
            project: Some(p.name.clone()),
            limit: 1,
            ..OrderQuery::default()
        })
        .await?;
    Ok(ProjectDto {
        name: p.name.clone(),
        repo_kind: format!("{:?}", p.repo.kind).to_lowercase(),
        repo_url: opsbot_deploy::vcs::redact(&p.repo.url),
        branch: p.repo.branch.clone(),
        hosts: p.hosts.clone(),
        approval_required: p.approval.required,
        deployed: deployed
            .into_iter()
            .map(|x| DeployedDto {
                host: x.host,
                version: x.version,
                build: x.build,
                at: x.at,
            })
            .collect(),
        last_order: last.into_iter().next().map(OrderDto::from),
    })
}

/// The projects the caller may see (项目), with what they run.
#[utoipa::path(get, path = "/api/v1/projects", operation_id = "list_projects", tag = "deploys",
    responses((status = 200, body = Vec<ProjectDto>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody, description = "deploys not enabled")),
    security(("bearer" = [])))]
pub async fn projects(auth: Authenticated) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let req = ApiRequester::of(&auth);
    let mut out = Vec::new();
    for p in d
        .visible_projects(&req, names::PROJECTS)
        .await
        .map_err(refused)?
    {
        out.push(project_dto(&d, &p).await?);
    }
    Ok(json(&out))
}

/// One project.
#[utoipa::path(get, path = "/api/v1/projects/{name}", operation_id = "get_project", tag = "deploys",
    params(("name" = String, Path, example = "shop")),
    responses((status = 200, body = ProjectDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn project(auth: Authenticated, ApiPath(name): ApiPath<String>) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let req = ApiRequester::of(&auth);
    match d.project(&name).await.map_err(refused)? {
        Some(p) if req.sees(&[names::PROJECTS], &p.name) => Ok(json(&project_dto(&d, &p).await?)),
        _ => Err(ApiError::not_found(format!(
            "no project {name:?} that you may see"
        ))),
    }
}

/// Create or replace a project (administrators only: its build commands run on this
/// server). The body is the project as in `[[deploy.projects]]`, in JSON.
#[utoipa::path(post, path = "/api/v1/projects", operation_id = "put_project", tag = "deploys",
    request_body(content = Object, description = "the project, with the keys of `[[deploy.projects]]`"),
    responses((status = 200, body = ProjectDto), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_project(
    auth: Authenticated,
    ApiJson(project): ApiJson<Project>,
) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let req = ApiRequester::of(&auth);
    if !req.is_admin() {
        return Err(ApiError::forbidden(format!(
            "⛔ 您({})没有权限创建项目:仅管理员可以(项目的构建命令在服务器上运行)",
            auth.user
        )));
    }
    check_text("name", &project.name, 64)?;
    d.put_project(&project, &auth.user).await.map_err(refused)?;
    let audit = opsbot_core::AuditEntry {
        id: 0,
        at: Utc::now(),
        user: auth.user.clone(),
        channel: auth.channel.to_string(),
        chat: None,
        text: format!("POST /api/v1/projects {}", project.name),
        command: Some(names::PROJECTS.to_string()),
        result: opsbot_core::AuditResult::Ok,
        message: format!("项目「{}」已创建或更新", project.name),
        duration_ms: 0,
        job_id: None,
    };
    if let Err(e) = auth.context().audit().append_audit(&audit).await {
        tracing::warn!(error = %e, "could not audit a project change");
    }
    Ok(json(&project_dto(&d, &project).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The release (order id) to return to; default the one before the current.
    #[serde(default)]
    pub version: Option<i64>,
}

/// Roll project `name` back (回滚): an order, approved and run like chat's.
#[utoipa::path(post, path = "/api/v1/projects/{name}/rollback", operation_id = "rollback_project", tag = "deploys",
    params(("name" = String, Path, example = "shop")),
    request_body = RollbackBody,
    responses((status = 200, body = Done), (status = 202, body = Accepted), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rollback(
    auth: Authenticated,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    visible_project(&d, &auth, &name).await?;
    let mut args = vec![name];
    if let Some(v) = body.version {
        args.push(format!("#{v}"));
    }
    Ok(ran(run(&auth, names::ROLLBACK, args, None).await?))
}

/// 404 unless the caller may use some deploy command on project `name`.
async fn visible_project(d: &Deploys, auth: &Authenticated, name: &str) -> ApiResult<Project> {
    check_text("project", name, 64)?;
    let req = ApiRequester::of(auth);
    let all = [
        names::PROJECTS,
        names::BUILD,
        names::DEPLOY,
        names::ROLLBACK,
        names::ORDERS,
    ];
    match d.project(name).await.map_err(refused)? {
        Some(p) if req.sees(&all, &p.name) => Ok(p),
        _ => Err(ApiError::not_found(format!(
            "no project {name:?} that you may see"
        ))),
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BuildsQuery {
    #[param(example = "shop")]
    pub project: Option<String>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// The newest builds the caller may see.
#[utoipa::path(get, path = "/api/v1/builds", operation_id = "list_builds", tag = "deploys", params(BuildsQuery),
    responses((status = 200, body = Page<BuildDto>), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn builds(
    auth: Authenticated,
    ApiQuery(q): ApiQuery<BuildsQuery>,
) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let req = ApiRequester::of(&auth);
    let paging = super::Paging::from_parts(Some(1), q.per_page)?;
    let project = q.project.filter(|p| !p.trim().is_empty());
    // More than a page, since some may be out of the caller's sight.
    let all = d
        .store()
        .build_list(project.as_deref(), paging.per_page as u64 * 4)
        .await?;
    let items: Vec<BuildDto> = all
        .into_iter()
        .filter(|b| req.sees(&BUILD_READERS, &b.project))
        .take(paging.per_page as usize)
        .map(BuildDto::from)
        .collect();
    Ok(json(&Page {
        has_more: false,
        items,
        page: 1,
        per_page: paging.per_page,
        total: None,
    }))
}

/// One build.
#[utoipa::path(get, path = "/api/v1/builds/{id}", operation_id = "get_build", tag = "deploys",
    params(("id" = i64, Path, example = 1)),
    responses((status = 200, body = BuildDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn build(auth: Authenticated, ApiPath(id): ApiPath<i64>) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let req = ApiRequester::of(&auth);
    Ok(json(&BuildDto::from(visible_build(&d, &req, id).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildBody {
    #[schema(example = "shop")]
    pub project: String,
    /// A branch, tag, commit or svn revision; default the project's branch.
    #[serde(default, rename = "ref")]
    #[schema(example = "main")]
    pub reference: Option<String>,
}

/// Build a project (构建): a job; the build's id is in the message and in `GET /builds`.
#[utoipa::path(post, path = "/api/v1/builds", operation_id = "start_build", tag = "deploys",
    request_body = BuildBody,
    responses((status = 202, body = Accepted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn start_build(
    auth: Authenticated,
    ApiJson(body): ApiJson<BuildBody>,
) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    visible_project(&d, &auth, &body.project).await?;
    let mut args = vec![body.project];
    if let Some(r) = body.reference.filter(|r| !r.trim().is_empty()) {
        check_text("ref", &r, 200)?;
        args.push(r);
    }
    Ok(ran(run(&auth, names::BUILD, args, None).await?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReleasesQuery {
    #[param(example = "shop")]
    pub project: Option<String>,
    /// An order state (待审批, 发布中, …).
    #[param(example = "待审批")]
    pub state: Option<String>,
    /// Orders with an id below this (the next page).
    #[param(example = 100)]
    pub before: Option<i64>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// The caller's visible orders, newest first, filtered.
pub async fn order_list(
    d: &Deploys,
    req: &ApiRequester,
    q: ReleasesQuery,
) -> ApiResult<(Vec<OrderRecord>, u32)> {
    let paging = super::Paging::from_parts(Some(1), q.per_page)?;
    let mut states = Vec::new();
    if let Some(s) = q.state.filter(|s| !s.trim().is_empty()) {
        let s = s.trim();
        if OrderState::parse(s).is_none() {
            return Err(ApiError::bad_request(format!(
                "state {s:?} is not one of {}",
                OrderState::ALL.map(OrderState::as_str).join(", ")
            )));
        }
        states.push(s.to_string());
    }
    let all = d
        .store()
        .order_list(&OrderQuery {
            project: q.project.filter(|p| !p.trim().is_empty()),
            states,
            before: q.before,
            limit: paging.per_page as u64 * 4,
        })
        .await?;
    Ok((
        all.into_iter()
            .filter(|o| req.sees(&ORDER_READERS, &o.project))
            .take(paging.per_page as usize)
            .collect(),
        paging.per_page,
    ))
}

/// Release orders (发布单), newest first.
#[utoipa::path(get, path = "/api/v1/releases", operation_id = "list_releases", tag = "deploys", params(ReleasesQuery),
    responses((status = 200, body = Page<OrderDto>), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn releases(
    auth: Authenticated,
    ApiQuery(q): ApiQuery<ReleasesQuery>,
) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let req = ApiRequester::of(&auth);
    let (orders, per_page) = order_list(&d, &req, q).await?;
    Ok(json(&Page {
        has_more: orders.len() == per_page as usize,
        items: orders.into_iter().map(OrderDto::from).collect::<Vec<_>>(),
        page: 1,
        per_page,
        total: None,
    }))
}

/// One order with its hosts.
#[utoipa::path(get, path = "/api/v1/releases/{id}", operation_id = "get_release", tag = "deploys",
    params(("id" = i64, Path, example = 1)),
    responses((status = 200, body = ReleaseDto), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn release(auth: Authenticated, ApiPath(id): ApiPath<i64>) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let req = ApiRequester::of(&auth);
    let o = visible_order(&d, &req, id, &ORDER_READERS).await?;
    let hosts = d.store().host_runs(id).await?;
    Ok(json(&ReleaseDto {
        order: OrderDto::from(o),
        hosts: hosts.into_iter().map(HostRunDto::from).collect(),
        logs_url: format!("/api/v1/releases/{id}/logs"),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    #[schema(example = "shop")]
    pub project: String,
    /// The build to release; default the newest succeeded.
    #[serde(default)]
    pub build: Option<i64>,
    /// Only these hosts; default all of the project's.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// Create a release order (发布): waits for approval when the project asks for it,
/// else runs as a job.
#[utoipa::path(post, path = "/api/v1/releases", operation_id = "create_release", tag = "deploys",
    request_body = ReleaseBody,
    responses((status = 200, body = Done, description = "created, waiting for approval or its window"), (status = 202, body = Accepted),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_release(
    auth: Authenticated,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    visible_project(&d, &auth, &body.project).await?;
    if body.hosts.len() > 30 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "at most 30 hosts may be named; leave hosts out for all",
        ));
    }
    let mut args = vec![body.project];
    if let Some(b) = body.build {
        args.push(format!("#{b}"));
    }
    for h in body.hosts {
        check_text("host", &h, 200)?;
        args.push(h);
    }
    Ok(ran(run(&auth, names::DEPLOY, args, None).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// Why (驳回 needs one).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Act on an order: approve (批准), reject (驳回, body `{reason}`), pause (暂停), resume
/// (继续), abort (终止), retry (重试: a new order for the failed hosts).
#[utoipa::path(post, path = "/api/v1/releases/{id}/{action}", operation_id = "act_on_release", tag = "deploys",
    params(("id" = i64, Path, example = 1), ("action" = String, Path, description = "approve, reject, pause, resume, abort, retry", example = "approve")),
    request_body(content = ActionBody, description = "optional except for reject"),
    responses((status = 200, body = Done), (status = 202, body = Accepted), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the order's state does not allow it"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn act(
    auth: Authenticated,
    ApiPath((id, action)): ApiPath<(i64, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let action = Action::parse(&action).ok_or_else(|| {
        ApiError::not_found(format!(
            "no action {action:?}; one of approve, reject, pause, resume, abort, retry"
        ))
    })?;
    // The body is optional (only 驳回 needs one), so it is read by hand.
    let body: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("the body is not {{\"reason\": \"…\"}}: {e}"),
            )
        })?
    };
    let reason = body.reason;
    act_on(&auth, &d, id, action, reason.as_deref())
        .await
        .map(ran)
}

/// An action on order `id`, for the API and the web UI alike.
pub async fn act_on(
    auth: &Authenticated,
    d: &Deploys,
    id: i64,
    action: Action,
    reason: Option<&str>,
) -> ApiResult<Ran> {
    let req = ApiRequester::of(auth);
    let all = [names::ORDERS, action.command()];
    let o = visible_order(d, &req, id, &all).await?;
    let mut args = vec![id.to_string()];
    if action == Action::Reject {
        let reason = reason.map(str::trim).unwrap_or("");
        if reason.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "驳回需要原因 (reason)",
            ));
        }
        check_text("reason", reason, 500)?;
        // The command's arguments are split at commas in chat; here the reason is one.
        args.push(reason.replace([',', ','], ";"));
    }
    run(auth, action.command(), args, Some(&o)).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// One host's lines only (`""`: the order's own lines).
    #[param(example = "web-01")]
    pub host: Option<String>,
    /// Resume after this seq; the `Last-Event-ID` header, when sent, wins.
    #[param(example = 0)]
    pub after: Option<i64>,
}

/// How often a stream looks for new lines.
pub const POLL: Duration = Duration::from_millis(500);
/// A stream ends after this; the browser's EventSource reconnects with `Last-Event-ID`.
pub const STREAM_LIFE: Duration = Duration::from_secs(3600);
/// Streams one user may hold open at once.
pub const STREAMS_PER_USER: usize = 8;

static STREAMS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

/// One of a user's open streams; gives its place back when the stream is dropped.
pub struct StreamSlot(String);

impl StreamSlot {
    pub fn take(user: &str) -> ApiResult<StreamSlot> {
        let mut m = STREAMS.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(user.to_string()).or_default();
        if *n >= STREAMS_PER_USER {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("at most {STREAMS_PER_USER} log streams at once; close one"),
            ));
        }
        *n += 1;
        Ok(StreamSlot(user.to_string()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut m = STREAMS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.0);
            }
        }
    }
}

/// Whose log a stream follows.
#[derive(Debug, Clone)]
pub enum Tailed {
    Build(i64),
    Order(i64, Option<String>),
}

impl Tailed {
    fn of(&self) -> LogOf<'_> {
        match self {
            Tailed::Build(id) => LogOf::Build(*id),
            Tailed::Order(id, host) => LogOf::Order(*id, host.as_deref()),
        }
    }

    /// Its owner is over: no more lines will come.
    async fn finished(&self, store: &dyn DeployStore) -> bool {
        match self {
            Tailed::Build(id) => match store.build_get(*id).await {
                Ok(Some(b)) => b.state != "running",
                Ok(None) => true,
                Err(_) => false,
            },
            Tailed::Order(id, _) => match store.order_get(*id).await {
                Ok(Some(o)) => OrderState::parse(&o.state).is_none_or(OrderState::is_final),
                Ok(None) => true,
                Err(_) => false,
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct ChunkData<'a> {
    seq: i64,
    host: &'a str,
    text: &'a str,
    at: DateTime<Utc>,
}

struct Tail {
    store: Arc<dyn DeployStore>,
    tailed: Tailed,
    after: i64,
    buf: VecDeque<LogChunk>,
    until: Instant,
    ended: bool,
    _slot: StreamSlot,
}

/// The log of `tailed` after seq `after` as server-sent events: `log` events (`id` the
/// chunk's seq, data `{seq, host, text, at}`), then one `end` event once the owner is
/// over and every line was sent (a browser must close then: EventSource reconnects).
pub fn stream(
    store: Arc<dyn DeployStore>,
    tailed: Tailed,
    after: i64,
    slot: StreamSlot,
) -> Response {
    let tail = Tail {
        store,
        tailed,
        after,
        buf: VecDeque::new(),
        until: Instant::now() + STREAM_LIFE,
        ended: false,
        _slot: slot,
    };
    let events = futures::stream::unfold(tail, |mut t| async move {
        loop {
            if t.ended {
                return None;
            }
            if let Some(c) = t.buf.pop_front() {
                t.after = c.seq;
                let data = serde_json::to_string(&ChunkData {
                    seq: c.seq,
                    host: &c.host,
                    text: &c.text,
                    at: c.at,
                })
                .unwrap_or_default();
                let ev = Event::default()
                    .event("log")
                    .id(c.seq.to_string())
                    .data(data);
                return Some((Ok::<_, std::convert::Infallible>(ev), t));
            }
            if Instant::now() >= t.until {
                return None;
            }
            // Asked before reading, so lines written just before the end are read.
            let finished = t.tailed.finished(t.store.as_ref()).await;
            match t.store.log_read(t.tailed.of(), t.after, 200).await {
                Ok(chunks) if !chunks.is_empty() => {
                    t.buf.extend(chunks);
                    continue;
                }
                Ok(_) if finished => {
                    t.ended = true;
                    return Some((Ok(Event::default().event("end").data("end")), t));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reading a log for a stream"),
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Where a stream resumes: `Last-Event-ID`, else `?after=`, else the start.
pub fn resume_after(headers: &HeaderMap, after: Option<i64>) -> ApiResult<i64> {
    match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID is not a log seq")),
        None => Ok(after.unwrap_or(0).max(0)),
    }
}

/// A build's log as server-sent events (resumes after the `Last-Event-ID` header's seq).
#[utoipa::path(get, path = "/api/v1/builds/{id}/log", operation_id = "build_log", tag = "deploys",
    params(("id" = i64, Path, example = 1), LogQuery),
    responses((status = 200, content_type = "text/event-stream", body = String, description = "`log` events (id = seq, data = {seq, host, text, at}), then `end`"),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn build_log(
    auth: Authenticated,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let req = ApiRequester::of(&auth);
    visible_build(&d, &req, id).await?;
    let after = resume_after(&headers, q.after)?;
    let slot = StreamSlot::take(&auth.user)?;
    Ok(stream(d.store().clone(), Tailed::Build(id), after, slot))
}

/// An order's log (all hosts, or `?host=`) as server-sent events (resumes after the
/// `Last-Event-ID` header's seq).
#[utoipa::path(get, path = "/api/v1/releases/{id}/logs", operation_id = "release_logs", tag = "deploys",
    params(("id" = i64, Path, example = 1), LogQuery),
    responses((status = 200, content_type = "text/event-stream", body = String, description = "`log` events (id = seq, data = {seq, host, text, at}), then `end`"),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn release_logs(
    auth: Authenticated,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let d = deploys(&auth)?;
    let req = ApiRequester::of(&auth);
    visible_order(&d, &req, id, &LOG_READERS).await?;
    if let Some(h) = &q.host {
        check_text("host", h, 200)?;
    }
    let after = resume_after(&headers, q.after)?;
    let slot = StreamSlot::take(&auth.user)?;
    Ok(stream(
        d.store().clone(),
        Tailed::Order(id, q.host),
        after,
        slot,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_repository_address_are_hidden() {
        let redact_url = opsbot_deploy::vcs::redact;
        assert_eq!(
            redact_url("https://bob:s3cret@git.example.com/shop.git"),
            "https://***@git.example.com/shop.git"
        );
        assert_eq!(
            redact_url("svn://svn.example.com/repo"),
            "svn://svn.example.com/repo"
        );
        assert_eq!(redact_url("/srv/git/shop"), "/srv/git/shop");
    }

    #[test]
    fn actions_parse_back() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.key()), Some(a));
        }
        assert_eq!(Action::parse("delete"), None);
    }
}
