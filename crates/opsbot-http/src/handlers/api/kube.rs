//! `/api/v1/k8s/…`: the Kubernetes subsystem over HTTP. Reads come from its pool (kept
//! current by watches), scoped like chat: a workload, pod or node the caller may not see
//! is left out of lists (scope `provider/cluster/namespace/name`, nodes at
//! `provider/cluster`). Actions (扩容/缩容, 重启, 回滚) and the reads that ask the API
//! server (日志, 事件) go through the engine's `run_command`, so they are
//! permission-checked, audited and run as jobs exactly as in chat.

use super::deploys::{check_text, ran};
use super::{ApiJson, ApiPath, ApiQuery};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use opsbot_engine::{Ran, Refusal};
use opsbot_kube::chat::names;
use opsbot_kube::pool::{Health, Rollout};
use opsbot_kube::{ClusterState, Kube, NodeRow, PodRow, WorkloadRow};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The Kubernetes subsystem of this server, or 404 when none is configured.
pub fn kube(auth: &Authenticated) -> ApiResult<Arc<Kube>> {
    auth.context().kube.clone().ok_or_else(|| {
        ApiError::not_found("no kind = \"kubernetes\" provider is configured on this server")
    })
}

/// A cluster and how current its part of the pool is.
#[derive(Debug, Serialize, ToSchema)]
pub struct KubeClusterDto {
    #[schema(example = "prod-k8s")]
    pub provider: String,
    #[schema(example = "prod")]
    pub cluster: String,
    /// `syncing` (first list under way), `live`, or `stale` (the API server is
    /// unreachable or refuses; the last data is kept and shown).
    #[schema(example = "live")]
    pub state: String,
    pub since: Option<DateTime<Utc>>,
    /// Why it is stale, in words.
    pub error: Option<String>,
    pub namespaces: usize,
    pub workloads: usize,
    pub pods: usize,
    pub nodes: usize,
}

impl From<ClusterState> for KubeClusterDto {
    fn from(c: ClusterState) -> Self {
        let (state, since, error) = match c.health {
            Health::Syncing => ("syncing", None, None),
            Health::Live { since } => ("live", Some(since), None),
            Health::Stale { since, error } => ("stale", Some(since), Some(error.to_string())),
        };
        KubeClusterDto {
            provider: c.provider,
            cluster: c.cluster,
            state: state.into(),
            since,
            error,
            namespaces: c.namespaces,
            workloads: c.workloads,
            pods: c.pods,
            nodes: c.nodes,
        }
    }
}

/// A Deployment or StatefulSet.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkloadDto {
    pub provider: String,
    pub cluster: String,
    #[schema(example = "payments")]
    pub namespace: String,
    #[schema(example = "api")]
    pub name: String,
    /// `Deployment` or `StatefulSet`.
    pub kind: String,
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    pub images: Vec<String>,
    /// The Deployment's revision (its newest ReplicaSet's) or the StatefulSet's update
    /// revision.
    pub revision: Option<String>,
    pub paused: bool,
    /// `complete`, `progressing`, `pending`, `paused` or `failed`.
    pub rollout: String,
    /// The rollout's state in words (为 a phone and the web UI).
    pub rollout_text: String,
    /// The cluster's data is stale.
    pub stale: bool,
}

impl From<WorkloadRow> for WorkloadDto {
    fn from(r: WorkloadRow) -> Self {
        let (rollout, rollout_text) = match &r.rollout {
            Rollout::Complete => ("complete", "已完成".to_string()),
            Rollout::Pending => ("pending", "等待控制器处理".to_string()),
            Rollout::Progressing {
                updated,
                desired,
                available,
                old,
            } => (
                "progressing",
                format!("发布中: 新版本 {updated}/{desired},可用 {available},旧副本 {old}"),
            ),
            Rollout::Paused => ("paused", "已暂停".to_string()),
            Rollout::Failed { message } => ("failed", format!("失败: {message}")),
        };
        let w = r.workload;
        WorkloadDto {
            provider: r.provider,
            cluster: r.cluster,
            namespace: w.namespace,
            name: w.name,
            kind: format!("{:?}", w.kind),
            desired: w.desired,
            ready: w.ready,
            updated: w.updated,
            available: w.available,
            images: w.images,
            revision: w.revision,
            paused: w.paused,
            rollout: rollout.into(),
            rollout_text,
            stale: r.stale,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PodDto {
    pub provider: String,
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    #[schema(example = "Running")]
    pub phase: String,
    pub node: Option<String>,
    pub restarts: i32,
    pub ready: bool,
    /// The workload it belongs to (`Deployment/api`).
    pub owner: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub stale: bool,
}

impl From<PodRow> for PodDto {
    fn from(r: PodRow) -> Self {
        let p = r.pod;
        PodDto {
            provider: r.provider,
            cluster: r.cluster,
            namespace: p.namespace,
            name: p.name,
            phase: p.phase,
            node: p.node,
            restarts: p.restarts,
            ready: p.ready,
            owner: p.owner.map(|(k, n)| format!("{k:?}/{n}")),
            created: p.created,
            stale: r.stale,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeDto {
    pub provider: String,
    pub cluster: String,
    pub name: String,
    pub ready: bool,
    #[schema(example = "8")]
    pub cpu: String,
    #[schema(example = "32Gi")]
    pub memory: String,
    pub roles: Vec<String>,
    pub stale: bool,
}

impl From<NodeRow> for NodeDto {
    fn from(r: NodeRow) -> Self {
        NodeDto {
            provider: r.provider,
            cluster: r.cluster,
            name: r.node.name,
            ready: r.node.ready,
            cpu: r.node.cpu,
            memory: r.node.memory,
            roles: r.node.roles,
            stale: r.stale,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KubeQuery {
    /// Only this namespace.
    #[param(example = "payments")]
    pub namespace: Option<String>,
    /// Only this cluster (its name in scope paths).
    #[param(example = "prod")]
    pub cluster: Option<String>,
    /// Only this provider.
    #[param(example = "k8s")]
    pub provider: Option<String>,
}

impl KubeQuery {
    fn check(&self) -> ApiResult<()> {
        for (what, v) in [
            ("namespace", &self.namespace),
            ("cluster", &self.cluster),
            ("provider", &self.provider),
        ] {
            if let Some(v) = v {
                check_text(what, v, 253)?;
            }
        }
        Ok(())
    }

    fn admits(&self, provider: &str, cluster: &str) -> bool {
        self.provider.as_deref().is_none_or(|p| p == provider)
            && self.cluster.as_deref().is_none_or(|c| c == cluster)
    }
}

/// Lists come in scope order: provider, cluster, namespace, name.
trait Placed {
    fn place(&self) -> (&str, &str, &str, &str);
}

impl Placed for WorkloadDto {
    fn place(&self) -> (&str, &str, &str, &str) {
        (&self.provider, &self.cluster, &self.namespace, &self.name)
    }
}

impl Placed for PodDto {
    fn place(&self) -> (&str, &str, &str, &str) {
        (&self.provider, &self.cluster, &self.namespace, &self.name)
    }
}

/// The rows whose scope `command` admits for the caller.
fn visible(auth: &Authenticated, command: &'static str) -> impl Fn(&str) -> bool {
    let viewer = auth.context().engine.viewer(&auth.caller());
    move |scope: &str| viewer.may_at(command, scope)
}

/// Clusters of which the caller may see a workload or the nodes.
#[utoipa::path(get, path = "/api/v1/k8s/clusters", operation_id = "list_k8s_clusters", tag = "kubernetes",
    security(("bearer" = [])),
    responses((status = 200, body = [KubeClusterDto]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn clusters(auth: Authenticated) -> ApiResult<Response> {
    let k = kube(&auth)?;
    let viewer = auth.context().engine.viewer(&auth.caller());
    let mut seen: Vec<(String, String)> = Vec::new();
    k.each_workload(
        None,
        &|scope| viewer.may_at(names::WORKLOADS, scope),
        &mut |c, _, _| {
            if !seen.iter().any(|(p, n)| *p == c.provider && *n == c.name) {
                seen.push((c.provider.clone(), c.name.clone()));
            }
        },
    );
    let list: Vec<KubeClusterDto> = k
        .clusters()
        .into_iter()
        .filter(|c| {
            seen.iter()
                .any(|(p, n)| *p == c.provider && *n == c.cluster)
                || viewer.may_at(names::NODES, &format!("{}/{}", c.provider, c.cluster))
        })
        .map(KubeClusterDto::from)
        .collect();
    Ok(json(&list))
}

/// Deployments and StatefulSets the caller may see (`工作负载` at their scope).
#[utoipa::path(get, path = "/api/v1/k8s/workloads", operation_id = "list_k8s_workloads", tag = "kubernetes", params(KubeQuery),
    security(("bearer" = [])),
    responses((status = 200, body = [WorkloadDto]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn workloads(
    auth: Authenticated,
    ApiQuery(q): ApiQuery<KubeQuery>,
) -> ApiResult<Response> {
    q.check()?;
    let k = kube(&auth)?;
    let mut rows: Vec<WorkloadDto> = k
        .workloads(q.namespace.as_deref(), &visible(&auth, names::WORKLOADS))
        .into_iter()
        .filter(|r| q.admits(&r.provider, &r.cluster))
        .map(WorkloadDto::from)
        .collect();
    rows.sort_by(|a, b| a.place().cmp(&b.place()));
    Ok(json(&rows))
}

/// Pods the caller may see (`工作负载` at `provider/cluster/namespace/pod`).
#[utoipa::path(get, path = "/api/v1/k8s/pods", operation_id = "list_k8s_pods", tag = "kubernetes", params(KubeQuery),
    security(("bearer" = [])),
    responses((status = 200, body = [PodDto]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn pods(auth: Authenticated, ApiQuery(q): ApiQuery<KubeQuery>) -> ApiResult<Response> {
    q.check()?;
    let k = kube(&auth)?;
    let mut rows: Vec<PodDto> = k
        .pods(q.namespace.as_deref(), &visible(&auth, names::WORKLOADS))
        .into_iter()
        .filter(|r| q.admits(&r.provider, &r.cluster))
        .map(PodDto::from)
        .collect();
    rows.sort_by(|a, b| a.place().cmp(&b.place()));
    Ok(json(&rows))
}

/// Nodes of the clusters where the caller may run `节点`.
#[utoipa::path(get, path = "/api/v1/k8s/nodes", operation_id = "list_k8s_nodes", tag = "kubernetes", params(KubeQuery),
    security(("bearer" = [])),
    responses((status = 200, body = [NodeDto]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn nodes(auth: Authenticated, ApiQuery(q): ApiQuery<KubeQuery>) -> ApiResult<Response> {
    q.check()?;
    let k = kube(&auth)?;
    let rows: Vec<NodeDto> = k
        .nodes(&visible(&auth, names::NODES))
        .into_iter()
        .filter(|r| q.admits(&r.provider, &r.cluster))
        .map(NodeDto::from)
        .collect();
    Ok(json(&rows))
}

/// What an action on a workload takes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadActionBody {
    /// `scale` only: the replica count (`5`), or a change (`+2`, `-1`).
    #[schema(example = "+2")]
    pub replicas: Option<String>,
    /// `rollback` only: the revision to go back to (default: the previous one).
    pub revision: Option<u32>,
}

/// The workload's path in the form every Kubernetes command takes.
fn workload_path(p: &WorkloadPath) -> ApiResult<String> {
    for (what, v) in [
        ("provider", &p.0),
        ("cluster", &p.1),
        ("namespace", &p.2),
        ("name", &p.3),
    ] {
        check_text(what, v, 253)?;
        if v.contains('/') || v.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("{what} {v:?} is not a Kubernetes name"),
            ));
        }
    }
    Ok(format!("{}/{}/{}/{}", p.0, p.1, p.2, p.3))
}

/// `(provider, cluster, namespace, name)` from a route.
pub type WorkloadPath = (String, String, String, String);

/// Runs a Kubernetes command through the engine, as the typed one runs.
async fn run(auth: &Authenticated, command: &str, args: Vec<String>) -> ApiResult<Ran> {
    auth.context()
        .engine
        .run_command(
            &auth.caller(),
            command,
            args,
            Arc::new(opsbot_engine::Discard),
        )
        .await
        .map_err(|r| match r {
            Refusal::Invalid(text) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", text)
            }
            r => ApiError::from(r),
        })
}

/// `scale`, `restart` or `rollback` a workload: a job, as the chat commands 扩容/缩容,
/// 重启 and 回滚 (the call is the confirmation).
#[utoipa::path(post, path = "/api/v1/k8s/workloads/{provider}/{cluster}/{namespace}/{name}/{action}", operation_id = "act_on_k8s_workload",
    tag = "kubernetes", request_body = WorkloadActionBody,
    params(("provider" = String, Path, example = "k8s"), ("cluster" = String, Path, example = "prod"),
           ("namespace" = String, Path, example = "payments"), ("name" = String, Path, example = "api"),
           ("action" = String, Path, example = "scale", description = "scale, restart or rollback")),
    security(("bearer" = [])),
    responses((status = 202, body = super::dto::Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn act(
    auth: Authenticated,
    ApiPath((provider, cluster, namespace, name, action)): ApiPath<(
        String,
        String,
        String,
        String,
        String,
    )>,
    ApiJson(body): ApiJson<WorkloadActionBody>,
) -> ApiResult<Response> {
    let workload = (provider, cluster, namespace, name);
    Ok(ran(perform(&auth, workload, &action, body).await?))
}

/// Runs `action` on a workload for the API and the web UI alike.
pub async fn perform(
    auth: &Authenticated,
    workload: WorkloadPath,
    action: &str,
    body: WorkloadActionBody,
) -> ApiResult<Ran> {
    kube(auth)?;
    let path = workload_path(&workload)?;
    let (command, args) = match action {
        "scale" => {
            let n = body.replicas.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "scale needs \"replicas\": a count (5) or a change (+2, -1)",
                )
            })?;
            check_text("replicas", &n, 12)?;
            let command = if n.trim_start().starts_with('-') {
                names::SCALE_IN
            } else {
                names::SCALE_OUT
            };
            (command, vec![path, n])
        }
        "restart" => (names::RESTART, vec![path]),
        "rollback" => {
            let mut args = vec![path];
            args.extend(body.revision.map(|r| r.to_string()));
            (names::ROLLBACK, args)
        }
        _ => {
            return Err(ApiError::not_found(format!(
                "no action {action:?}; one of scale, restart, rollback"
            )))
        }
    };
    run(auth, command, args).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Lines from the end (the provider's `log_lines` by default, at most 500).
    #[param(minimum = 1, maximum = 500, example = 20)]
    pub lines: Option<u32>,
}

/// A pod's log tail (`日志`), capped for a phone as in chat; a workload's path gives
/// its newest pod.
#[utoipa::path(get, path = "/api/v1/k8s/pods/{provider}/{cluster}/{namespace}/{name}/log", operation_id = "k8s_pod_log",
    tag = "kubernetes", params(("provider" = String, Path, example = "k8s"), ("cluster" = String, Path, example = "prod"),
        ("namespace" = String, Path, example = "payments"), ("name" = String, Path, example = "api"), LogQuery),
    security(("bearer" = [])),
    responses((status = 200, body = super::deploys::Done), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn log(
    auth: Authenticated,
    ApiPath(p): ApiPath<WorkloadPath>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Response> {
    kube(&auth)?;
    let mut args = vec![workload_path(&p)?];
    args.extend(q.lines.map(|n| n.to_string()));
    Ok(ran(run(&auth, names::LOGS, args).await?))
}

/// The recent events of a workload or pod (`事件`), newest first.
#[utoipa::path(get, path = "/api/v1/k8s/events/{provider}/{cluster}/{namespace}/{name}", operation_id = "k8s_events",
    tag = "kubernetes", params(("provider" = String, Path, example = "k8s"), ("cluster" = String, Path, example = "prod"),
        ("namespace" = String, Path, example = "payments"), ("name" = String, Path, example = "api")),
    security(("bearer" = [])),
    responses((status = 200, body = super::deploys::Done), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn events(auth: Authenticated, ApiPath(p): ApiPath<WorkloadPath>) -> ApiResult<Response> {
    kube(&auth)?;
    let path = workload_path(&p)?;
    Ok(ran(run(&auth, names::EVENTS, vec![path]).await?))
}
