//! `/api/v1/templates`: the numbered templates that clones start from.

use super::dto::TemplateDto;
use super::ApiPath;
use super::{ApiQuery, Page, Paging};
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::json;
use axum::response::Response;
use opsbot_core::Template;
use opsbot_engine::Lens;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Query {
    #[param(minimum = 1, example = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub per_page: Option<u32>,
}

/// List templates.
#[utoipa::path(get, path = "/api/v1/templates", operation_id = "list_templates", tag = "inventory", params(Query),
    responses((status = 200, body = Page<TemplateDto>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(auth: Authenticated, ApiQuery(q): ApiQuery<Query>) -> ApiResult<Response> {
    super::objects::require(&auth, Lens::TEMPLATES)?;
    let paging = Paging::from_parts(q.page, q.per_page)?;
    let pool = auth.context().engine.pool().await?;
    let all: Vec<&Template> = auth.viewer().templates(&pool, Lens::TEMPLATES);
    Ok(json(&Page::of(all, paging, TemplateDto::from)))
}

/// One template, by number.
#[utoipa::path(get, path = "/api/v1/templates/{number}", operation_id = "get_template", tag = "inventory",
    params(("number" = u32, Path, description = "the template's number (GET /templates)", minimum = 1, example = 1)),
    responses((status = 200, body = TemplateDto), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(auth: Authenticated, ApiPath(number): ApiPath<u32>) -> ApiResult<Response> {
    super::objects::require(&auth, Lens::TEMPLATES)?;
    let pool = auth.context().engine.pool().await?;
    auth.viewer()
        .templates(&pool, Lens::TEMPLATES)
        .into_iter()
        .find(|t| t.number == number)
        .map(|t| json(&TemplateDto::from(t)))
        .ok_or_else(|| ApiError::not_found(format!("no template number {number}")))
}
