//! `/api/v1/changes`: the change history of the pool (what, old → new, when, source),
//! newest first. Needs `概况`; a scoped user sees the changes of objects in scope.

use super::dto::ChangeDto;
use super::{ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiResult, ErrorBody};
use crate::json;
use axum::response::Response;
use opsbot_core::Change;
use opsbot_engine::view::read;
use opsbot_engine::Lens;
use opsbot_store::ChangeQuery;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    #[param(example = "sim")]
    pub provider: Option<String>,
    /// datacenter, cluster, host, vm, datastore, network
    #[param(example = "vm")]
    pub kind: Option<String>,
    /// The provider's id of one object.
    #[param(example = "vm-5")]
    pub object_id: Option<String>,
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

pub(crate) const COMMAND: &str = read::OVERVIEW;

/// Query the change history.
#[utoipa::path(get, path = "/api/v1/changes", operation_id = "list_changes", tag = "history", params(Query),
    responses((status = 200, body = Page<ChangeDto>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    auth.require(COMMAND)?;
    let paging = Paging::from_parts(q.page, q.per_page)?;
    let page = change_page(&auth, q.provider, q.kind, q.object_id, paging).await?;
    Ok(json(&page))
}

/// One page of changes the caller may see.
pub(crate) async fn change_page(
    auth: &Authenticated,
    provider: Option<String>,
    kind: Option<String>,
    object_id: Option<String>,
    paging: Paging,
) -> ApiResult<Page<ChangeDto>> {
    let store = auth.context().change_log();
    let query = |limit: u64, offset: u64| ChangeQuery {
        provider: provider.clone(),
        object_kind: kind.clone(),
        object_id: object_id.clone(),
        limit,
        offset,
    };
    let want = paging.per_page as usize;
    let viewer = auth.viewer();
    let (items, has_more) = if viewer.everywhere(COMMAND) {
        let mut rows = store
            .changes(&query(want as u64 + 1, paging.offset() as u64))
            .await?;
        let more = rows.len() > want;
        rows.truncate(want);
        (rows, more)
    } else {
        // Filter by scope while reading: walk the history in batches until the page
        // is full (bounded, so a user who sees little cannot make it read everything).
        let pool = auth.context().engine.pool().await?;
        let visible = |c: &Change| viewer.sees_change(&pool, c, Lens::OVERVIEW);
        let (mut skipped, mut rows, mut offset) = (0usize, Vec::new(), 0u64);
        const BATCH: u64 = 500;
        let mut more = false;
        for _ in 0..20 {
            let batch = store.changes(&query(BATCH, offset)).await?;
            let n = batch.len() as u64;
            for c in batch.into_iter().filter(|c| visible(c)) {
                if skipped < paging.offset() {
                    skipped += 1;
                } else if rows.len() < want {
                    rows.push(c);
                } else {
                    more = true;
                    break;
                }
            }
            if more || n < BATCH {
                break;
            }
            offset += BATCH;
        }
        (rows, more)
    };
    Ok(Page {
        items: items.into_iter().map(ChangeDto::from).collect(),
        page: paging.page,
        per_page: paging.per_page,
        total: None,
        has_more,
    })
}
