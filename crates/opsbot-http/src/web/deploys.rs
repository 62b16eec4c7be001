//! The deploy pages: 项目 (projects with what they run, 构建 / 发布 buttons), 发布单 (the
//! orders, state chips) and one order (its hosts, a live log fed by the REST API's SSE
//! route, and the actions its state allows). Reads are the REST API's, scoped the same
//! way; actions go through the same engine path (`run_command`: permission, audit, jobs),
//! behind a confirm dialog for the destructive ones.

use super::pages::{
    base, busy, csrf_ok, expired, message, over_budget, ran_page, refusal, unavailable,
    with_retry_after,
};
use super::WebUser;
use crate::error::ApiError;
use crate::handlers::api::deploys::{
    self as api, Action, ApiRequester, OrderDto, ReleasesQuery, LOG_READERS, ORDER_READERS,
};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use opsbot_deploy::deploys::scope;
use opsbot_deploy::model::OrderState;
use opsbot_deploy::orders::names;
use opsbot_deploy::Deploys;
use opsbot_engine::Ran;
use opsbot_store::deploy::LogOf;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The lines a release page shows at once; the live panel follows from the last.
const LOG_LINES: u64 = 1000;

fn no_deploys(user: &WebUser) -> Response {
    message(
        user,
        StatusCode::NOT_FOUND,
        "未启用发布",
        "此服务器未配置发布功能",
    )
}

fn state_class(state: &str) -> &'static str {
    match OrderState::parse(state) {
        Some(OrderState::Succeeded) => "succeeded",
        Some(OrderState::Running | OrderState::Ready) => "running",
        Some(OrderState::Pending | OrderState::Paused) => "pending",
        Some(
            OrderState::Failed
            | OrderState::PartlyFailed
            | OrderState::Aborted
            | OrderState::Interrupted
            | OrderState::Rejected
            | OrderState::Expired,
        ) => "failed",
        _ => "",
    }
}

#[derive(Debug, Serialize)]
struct ProjectRow {
    #[serde(flatten)]
    project: api::ProjectDto,
    /// The versions the hosts run (one, unless a release is half done).
    versions: Vec<i64>,
    last_state_class: &'static str,
    may_build: bool,
    may_release: bool,
}

/// `/ui/projects`.
pub async fn projects(user: WebUser) -> Response {
    let Ok(d) = api::deploys(&user.auth) else {
        return no_deploys(&user);
    };
    let req = ApiRequester::of(&user.auth);
    let Ok(list) = d.visible_projects(&req, names::PROJECTS).await else {
        return unavailable(&user);
    };
    let mut rows = Vec::new();
    for p in &list {
        let Ok(dto) = api::project_dto(&d, p).await else {
            return unavailable(&user);
        };
        let mut versions: Vec<i64> = dto.deployed.iter().map(|x| x.version).collect();
        versions.sort_unstable();
        versions.dedup();
        rows.push(ProjectRow {
            last_state_class: dto
                .last_order
                .as_ref()
                .map_or("", |o| state_class(&o.state)),
            versions,
            may_build: req.sees(&[names::BUILD], &p.name),
            may_release: req.sees(&[names::DEPLOY], &p.name),
            project: dto,
        });
    }
    let ctx = user.auth.context();
    ctx.templates.page(
        "projects.html",
        context! { projects => rows, ..base(&user, "项目", "releases") },
    )
}

/// `POST /ui/projects/{name}/{build|release}`: 构建 (with an optional ref) or 发布 (the
/// newest build to every host), confirmed in a dialog.
pub async fn project_act(
    user: WebUser,
    Path((name, what)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !csrf_ok(&user, &form) {
        return expired(&user);
    }
    let back = Some("/ui/projects");
    if let Some(page) = busy(&user, back).await {
        return page;
    }
    let mut args = vec![name];
    let command = match what.as_str() {
        "build" => {
            let r = form.get("ref").map(|s| s.trim()).unwrap_or("");
            if !r.is_empty() {
                if let Err(e) = api::check_text("ref", r, 200) {
                    return refusal(&user, &e, back);
                }
                args.push(r.to_string());
            }
            names::BUILD
        }
        "release" => names::DEPLOY,
        _ => return super::pages::not_found(user).await,
    };
    match api::run(&user.auth, command, args, None).await {
        Ok(ran) => ran_page(&user, ran, "/ui/projects", "/ui/releases"),
        Err(e) => refusal(&user, &e, back),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    project: Option<String>,
    state: Option<String>,
    before: Option<i64>,
}

#[derive(Debug, Serialize)]
struct OrderRow {
    #[serde(flatten)]
    order: OrderDto,
    state_class: &'static str,
}

fn row(o: OrderDto) -> OrderRow {
    OrderRow {
        state_class: state_class(&o.state),
        order: o,
    }
}

/// `/ui/releases?project=&state=`: orders, newest first.
pub async fn releases(user: WebUser, Query(q): Query<ListQuery>) -> Response {
    let Ok(d) = api::deploys(&user.auth) else {
        return no_deploys(&user);
    };
    let req = ApiRequester::of(&user.auth);
    let f = context! { project => q.project.clone(), state => q.state.clone() };
    let query = ReleasesQuery {
        project: q.project,
        state: q.state,
        before: q.before,
        per_page: Some(50),
    };
    let (orders, per_page) = match api::order_list(&d, &req, query).await {
        Ok(x) => x,
        Err(e) => return refusal(&user, &e, Some("/ui/releases")),
    };
    let next = (orders.len() == per_page as usize)
        .then(|| orders.last().map(|o| o.id))
        .flatten();
    let rows: Vec<OrderRow> = orders.into_iter().map(|o| row(o.into())).collect();
    let states: Vec<&str> = OrderState::ALL.iter().map(|s| s.as_str()).collect();
    user.auth.context().templates.page(
        "releases.html",
        context! {
            orders => rows, states => states, f => f, next => next,
            ..base(&user, "发布单", "releases")
        },
    )
}

#[derive(Debug, Serialize)]
struct ActionView {
    key: &'static str,
    label: &'static str,
    /// Asked in a dialog first.
    confirm: bool,
    danger: bool,
    summary: String,
    /// 驳回's reason.
    reason: bool,
}

fn action_view(key: &'static str, o: &OrderDto) -> ActionView {
    let id = o.id;
    let (label, confirm, danger, summary) = match key {
        "approve" => ("批准", false, false, format!("批准发布单 #{id}")),
        "reject" => ("驳回", true, false, format!("驳回发布单 #{id},请写明原因")),
        "pause" => (
            "暂停",
            false,
            false,
            format!("进行中的主机完成后暂停 #{id}"),
        ),
        "resume" => ("继续", false, false, format!("继续发布单 #{id}")),
        "abort" => (
            "终止",
            true,
            true,
            format!("终止发布单 #{id}:其余主机不再发布"),
        ),
        "retry" => (
            "重试",
            true,
            true,
            format!("对发布单 #{id} 中失败的主机重新发布(新的发布单)"),
        ),
        _ => (
            "回滚",
            true,
            true,
            format!("将项目「{}」回滚到上一个版本(新的发布单)", o.project),
        ),
    };
    ActionView {
        key,
        label,
        confirm,
        danger,
        summary,
        reason: key == "reject",
    }
}

/// `/ui/releases/{id}`.
pub async fn release(user: WebUser, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return super::pages::not_found(user).await;
    };
    release_page(&user, id, None).await
}

/// An order's page; `notice` is what an action was answered: (ok, text).
async fn release_page(user: &WebUser, id: i64, notice: Option<(bool, String)>) -> Response {
    let Ok(d) = api::deploys(&user.auth) else {
        return no_deploys(user);
    };
    let req = ApiRequester::of(&user.auth);
    let o = match api::visible_order(&d, &req, id, &ORDER_READERS).await {
        Ok(o) => o,
        Err(e) => return refusal(user, &e, Some("/ui/releases")),
    };
    let page = render_release(user, &d, &req, o, notice).await;
    page.unwrap_or_else(|e| refusal(user, &e, Some("/ui/releases")))
}

async fn render_release(
    user: &WebUser,
    d: &Arc<Deploys>,
    req: &ApiRequester,
    o: opsbot_store::deploy::OrderRecord,
    notice: Option<(bool, String)>,
) -> Result<Response, ApiError> {
    let id = o.id;
    let hosts: Vec<api::HostRunDto> = d
        .store()
        .host_runs(id)
        .await?
        .into_iter()
        .map(api::HostRunDto::from)
        .collect();
    let may_log = req.sees(&LOG_READERS, &o.project);
    let log = if may_log {
        d.store()
            .log_read(LogOf::Order(id, None), 0, LOG_LINES)
            .await?
    } else {
        Vec::new()
    };
    let after = log.last().map_or(0, |c| c.seq);
    let lines: Vec<minijinja::Value> = log
        .iter()
        .map(|c| context! { host => c.host, text => c.text, seq => c.seq })
        .collect();
    let dto = OrderDto::from(o);
    let at = scope(&dto.project);
    let may = |key: &str| {
        let command = match Action::parse(key) {
            Some(a) => a.command(),
            None => names::ROLLBACK,
        };
        opsbot_core::chat::Requester::may_at(req, command, &at)
    };
    let actions: Vec<ActionView> = dto
        .actions
        .iter()
        .filter(|k| may(k))
        .map(|k| action_view(k, &dto))
        .collect();
    let live = may_log && !dto.finished;
    let mut page = user.auth.context().templates.page(
        "release.html",
        context! {
            order => row(dto), hosts => hosts, lines => lines, after => after,
            live => live, may_log => may_log, actions => actions,
            notice => notice.as_ref().map(|(ok, text)| context! { ok => ok, text => text }),
            ..base(user, &format!("发布单 #{id}"), "releases")
        },
    );
    if let Some((false, _)) = notice {
        *page.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

/// `POST /ui/releases/{id}/{action}`: 批准 / 驳回 / 暂停 / 继续 / 终止 / 重试 / 回滚, through
/// the engine like the API's; the answer is shown on the order's page (a job started
/// by 重试 or 回滚 opens its job page).
pub async fn act(
    user: WebUser,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !csrf_ok(&user, &form) {
        return expired(&user);
    }
    let Ok(id) = id.parse::<i64>() else {
        return super::pages::not_found(user).await;
    };
    let here = format!("/ui/releases/{id}");
    if let Some((text, wait)) = over_budget(&user).await {
        return with_retry_after(release_page(&user, id, Some((false, text))).await, wait);
    }
    let Ok(d) = api::deploys(&user.auth) else {
        return no_deploys(&user);
    };
    let result = match (action.as_str(), Action::parse(&action)) {
        ("rollback", _) => {
            let req = ApiRequester::of(&user.auth);
            match api::visible_order(&d, &req, id, &ORDER_READERS).await {
                Ok(o) => api::run(&user.auth, names::ROLLBACK, vec![o.project], None).await,
                Err(e) => Err(e),
            }
        }
        (_, Some(a)) => {
            api::act_on(
                &user.auth,
                &d,
                id,
                a,
                form.get("reason").map(String::as_str),
            )
            .await
        }
        (_, None) => return super::pages::not_found(user).await,
    };
    match result {
        Ok(Ran::Started { job, .. }) if matches!(action.as_str(), "retry" | "rollback") => {
            Redirect::to(&format!(
                "/ui/jobs/{}?back={}",
                job.0,
                super::login::encode(&here)
            ))
            .into_response()
        }
        Ok(Ran::Started { message: text, .. } | Ran::Done { message: text, .. }) => {
            release_page(&user, id, Some((true, text))).await
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => refusal(&user, &e, Some("/ui/releases")),
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => unavailable(&user),
        Err(e) => {
            let mut page = release_page(&user, id, Some((false, e.message.clone()))).await;
            if page.status() == StatusCode::UNPROCESSABLE_ENTITY {
                *page.status_mut() = e.status;
            }
            page
        }
    }
}
