//! Page rendering: minijinja templates compiled into the binary (`include_str!`),
//! HTML auto-escaping on (a VM called `<script>` is shown, never run), plus the few
//! filters the pages use.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use std::sync::Arc;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("vms.html", include_str!("templates/vms.html")),
    ("vm.html", include_str!("templates/vm.html")),
    ("workloads.html", include_str!("templates/workloads.html")),
    ("job.html", include_str!("templates/job.html")),
    ("jobs.html", include_str!("templates/jobs.html")),
    ("clone.html", include_str!("templates/clone.html")),
    ("hosts.html", include_str!("templates/hosts.html")),
    ("datastores.html", include_str!("templates/datastores.html")),
    ("networks.html", include_str!("templates/networks.html")),
    ("services.html", include_str!("templates/services.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("changes.html", include_str!("templates/changes.html")),
    ("login.html", include_str!("templates/login.html")),
    ("message.html", include_str!("templates/message.html")),
    ("api_docs.html", include_str!("templates/api_docs.html")),
    ("projects.html", include_str!("templates/projects.html")),
    ("releases.html", include_str!("templates/releases.html")),
    ("release.html", include_str!("templates/release.html")),
];

/// The compiled templates. Cheap to clone.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// Times in the machine's zone.
    pub fn new() -> Templates {
        Self::with_zone(opsbot_core::Zone::Local)
    }

    /// Times in `zone` (`[chat] timezone`), each followed by the zone's name.
    pub fn with_zone(zone: opsbot_core::Zone) -> Templates {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
        }
        env.add_filter("size", |gb: u64| opsbot_engine::format::fmt_size(gb));
        env.add_filter("mem", |mb: u64| opsbot_engine::format::fmt_memory(mb, " "));
        // The model's values in words (toolsOk → 运行中, Network adapter 1 → 网卡 1, a
        // change's NIC list as lines): the same words chat uses.
        env.add_filter("tools", |s: String| {
            opsbot_engine::words::tools(&s).into_owned()
        });
        env.add_filter("device", |s: String| {
            opsbot_engine::words::device(&s).into_owned()
        });
        env.add_filter("kind", |s: String| {
            opsbot_engine::words::object_kind(&s).to_string()
        });
        env.add_function(
            "change_text",
            |field: String, old: Option<String>, new: Option<String>| {
                opsbot_engine::words::change_parts(&field, old.as_deref(), new.as_deref())
            },
        );
        // A bar's colour: amber from WARM_PERCENT used, red from HOT_PERCENT.
        env.add_filter("level", |used: u64| level(used));
        env.add_filter("localtime", move |s: String| {
            chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| {
                    let t = t.with_timezone(&chrono::Utc);
                    format!("{} {}", zone.format(t, "%m-%d %H:%M:%S"), zone.label(t))
                })
                .unwrap_or(s)
        });
        Templates { env: Arc::new(env) }
    }

    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }

    /// A page, or a plain error page when the template fails.
    pub fn page(&self, name: &str, ctx: minijinja::Value) -> Response {
        match self.render(name, ctx) {
            Ok(html) => Html(html).into_response(),
            Err(e) => error_page(&e),
        }
    }

    /// A message page (errors, refusals) with a status, for someone not signed in
    /// (or before we know who): its way back is 纵览.
    pub fn message(
        &self,
        status: StatusCode,
        title: &str,
        text: &str,
        user: Option<&str>,
    ) -> Response {
        self.message_in(
            status,
            minijinja::context! {
                title => title, text => text, user => user,
                asset_version => super::asset_version(),
            },
        )
    }

    /// A message page with the caller's own context: the signed-in layout (tabs,
    /// logout) and `back`, the page the user was on.
    pub fn message_in(&self, status: StatusCode, ctx: minijinja::Value) -> Response {
        let mut r = self.page("message.html", ctx);
        *r.status_mut() = status;
        r
    }
}

/// From this share used a bar is amber (worth a look) ...
pub const WARM_PERCENT: u64 = 75;
/// ... and from this red (act now), the level at which 纵览 warns too.
pub const HOT_PERCENT: u64 = 85;

/// The CSS class of a bar `used` percent full.
pub fn level(used: u64) -> &'static str {
    if used >= HOT_PERCENT {
        "hot"
    } else if used >= WARM_PERCENT {
        "warm"
    } else {
        ""
    }
}

/// A template bug: logged, and a bare page in its place.
pub fn error_page(e: &minijinja::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "page template failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html("<!DOCTYPE html><meta charset=utf-8><p>页面出错了,请稍后重试</p>"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes() {
        let t = Templates::new();
        let html = t
            .render(
                "message.html",
                minijinja::context! { title => "<script>alert(1)</script>", text => "' OR 1=1 --" },
            )
            .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn bars_turn_amber_then_red() {
        assert_eq!(level(0), "");
        assert_eq!(level(WARM_PERCENT - 1), "");
        assert_eq!(level(WARM_PERCENT), "warm");
        assert_eq!(level(HOT_PERCENT), "hot");
        assert_eq!(level(100), "hot");
    }
}
