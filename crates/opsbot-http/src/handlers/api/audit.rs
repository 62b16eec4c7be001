//! `/api/v1/audit`: the audit log, newest first. Users see their own entries;
//! administrators (commands `*` on scope `*`, as the engine decides) everyone's.

use super::dto::AuditDto;
use super::{ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::response::Response;
use opsbot_core::AuditResult;
use opsbot_store::AuditQuery;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    #[param(example = "zhangsan")]
    pub user: Option<String>,
    /// ok, denied, invalid, failed, pending, accepted, cancelled
    #[param(example = "ok")]
    pub result: Option<String>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// Query the audit log.
#[utoipa::path(get, path = "/api/v1/audit", operation_id = "list_audit", tag = "history", params(Query),
    responses((status = 200, body = Page<AuditDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    let paging = Paging::from_parts(q.page, q.per_page)?;
    let result = match q.result.as_deref() {
        None => None,
        Some(r) => Some(AuditResult::parse(r).ok_or_else(|| {
            ApiError::bad_request(format!(
                "result {r:?} is not one of ok, denied, invalid, failed, pending, accepted, cancelled"
            ))
        })?),
    };
    let user = scoped_user(&auth, q.user)?;
    let page = audit_page(&auth, user, result, paging).await?;
    Ok(json(&page))
}

/// The user whose entries a caller may read: themselves, or anyone for an admin.
pub(crate) fn scoped_user(
    auth: &Authenticated,
    wanted: Option<String>,
) -> ApiResult<Option<String>> {
    auth.viewer()
        .whose(wanted)
        .map_err(|_| ApiError::forbidden("only administrators may read other users' audit entries"))
}

/// One page of the log, fetched one entry long to know whether more follow.
pub(crate) async fn audit_page(
    auth: &Authenticated,
    user: Option<String>,
    result: Option<AuditResult>,
    paging: Paging,
) -> ApiResult<Page<AuditDto>> {
    let mut entries = auth
        .context()
        .audit()
        .audit_log(&AuditQuery {
            user,
            result,
            limit: paging.per_page as u64 + 1,
            offset: paging.offset() as u64,
        })
        .await?;
    let has_more = entries.len() > paging.per_page as usize;
    entries.truncate(paging.per_page as usize);
    Ok(Page {
        items: entries.into_iter().map(AuditDto::from).collect(),
        page: paging.page,
        per_page: paging.per_page,
        total: None,
        has_more,
    })
}
