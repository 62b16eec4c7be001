//! The 容器 page: Kubernetes workloads grouped by cluster and namespace, with the
//! cluster's freshness, and 扩缩容 / 重启 / 回滚 behind confirm dialogs. Reads are the
//! REST API's (the same scopes); actions go through the same engine path
//! (`run_command`: permission, audit, jobs).

use super::pages::{base, busy, csrf_ok, expired, message, message_back, ran_page, refusal};
use super::WebUser;
use crate::handlers::api::kube::{self as api, KubeClusterDto, WorkloadDto};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use minijinja::context;
use opsbot_kube::chat::names;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    namespace: Option<String>,
}

#[derive(Debug, Serialize)]
struct Row {
    #[serde(flatten)]
    workload: WorkloadDto,
    /// A unique id for its dialogs.
    key: usize,
    may_scale: bool,
    may_restart: bool,
    may_rollback: bool,
}

#[derive(Debug, Serialize)]
struct Group {
    cluster: String,
    namespace: String,
    rows: Vec<Row>,
}

/// `/ui/workloads?namespace=`.
pub async fn workloads(user: WebUser, Query(q): Query<ListQuery>) -> Response {
    let Ok(k) = api::kube(&user.auth) else {
        return message(
            &user,
            StatusCode::NOT_FOUND,
            "未配置 Kubernetes",
            "此服务器没有 kind = \"kubernetes\" 的 provider",
        );
    };
    let ns = q.namespace.filter(|n| !n.trim().is_empty());
    let viewer = user.auth.context().engine.viewer(&user.auth.caller());
    let sees = |command: &str, scope: &str| viewer.may_at(command, scope);
    let rows = k.workloads(ns.as_deref(), &|s: &str| sees(names::WORKLOADS, s));
    let mut groups: BTreeMap<(String, String, String), Vec<Row>> = BTreeMap::new();
    let mut seen_clusters = Vec::new();
    for (key, r) in rows.into_iter().enumerate() {
        let scope = format!(
            "{}/{}/{}/{}",
            r.provider, r.cluster, r.workload.namespace, r.workload.name
        );
        if !seen_clusters.contains(&(r.provider.clone(), r.cluster.clone())) {
            seen_clusters.push((r.provider.clone(), r.cluster.clone()));
        }
        let w = WorkloadDto::from(r);
        groups
            .entry((w.provider.clone(), w.cluster.clone(), w.namespace.clone()))
            .or_default()
            .push(Row {
                key,
                may_scale: sees(names::SCALE_OUT, &scope) || sees(names::SCALE_IN, &scope),
                may_restart: sees(names::RESTART, &scope),
                may_rollback: sees(names::ROLLBACK, &scope),
                workload: w,
            });
    }
    let groups: Vec<Group> = groups
        .into_iter()
        .map(|((_, cluster, namespace), mut rows)| {
            rows.sort_by(|a, b| a.workload.name.cmp(&b.workload.name));
            Group {
                cluster,
                namespace,
                rows,
            }
        })
        .collect();
    let clusters: Vec<KubeClusterDto> = k
        .clusters()
        .into_iter()
        .filter(|c| seen_clusters.contains(&(c.provider.clone(), c.cluster.clone())))
        .map(KubeClusterDto::from)
        .collect();
    user.auth.context().templates.page(
        "workloads.html",
        context! {
            groups => groups, clusters => clusters, namespace => ns,
            ..base(&user, "容器", "workloads")
        },
    )
}

/// `POST /ui/workloads/{provider}/{cluster}/{namespace}/{name}/{scale|restart|rollback}`.
pub async fn act(
    user: WebUser,
    Path((provider, cluster, namespace, name, action)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !csrf_ok(&user, &form) {
        return expired(&user);
    }
    let back = Some("/ui/workloads");
    if let Some(page) = busy(&user, back).await {
        return page;
    }
    let field = |k: &str| form.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let revision = match field("revision").map(str::parse::<u32>) {
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => {
            return message_back(
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                "未能执行",
                "版本应为数字(留空为上一个版本)",
                back,
            )
        }
        None => None,
    };
    let body = api::WorkloadActionBody {
        replicas: field("replicas").map(str::to_string),
        revision,
    };
    match api::perform(
        &user.auth,
        (provider, cluster, namespace, name),
        &action,
        body,
    )
    .await
    {
        Ok(ran) => ran_page(&user, ran, "/ui/workloads", "/ui/workloads"),
        Err(e) => refusal(&user, &e, back),
    }
}
