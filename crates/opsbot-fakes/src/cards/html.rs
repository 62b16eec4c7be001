//! A template card drawn as a self-contained HTML page (inline CSS, nothing fetched), in
//! a 420 px phone-like frame: for documentation screenshots of what members see. Every
//! text is escaped, because card text comes from alerts.

use serde_json::Value;

const STYLE: &str = "body{margin:0;background:#ededed;font:14px/1.45 -apple-system,'PingFang SC','Microsoft YaHei',sans-serif;color:#191919}
.phone{width:420px;margin:24px auto;padding:16px;box-sizing:border-box;background:#ededed}
.card{background:#fff;border-radius:8px;padding:16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.source{font-size:12px;margin-bottom:8px}.c0{color:#999}.c1{color:#191919}.c2{color:#e64340}.c3{color:#07c160}
h1{font-size:17px;margin:0}.desc{color:#999;font-size:13px;margin-top:2px}
.emph{margin:10px 0}.emph b{display:block;font-size:28px;color:#2b6cdf;font-weight:600}
.sub{color:#555;margin-top:8px;white-space:pre-wrap}
.rows{margin-top:10px}.row{display:flex;margin:3px 0}.key{color:#999;width:96px;flex:none}.val{word-break:break-all}
.link{color:#2b6cdf}.jumps{margin-top:10px;border-top:1px solid #eee;padding-top:8px}
.question{margin-top:10px}.qtitle{color:#999;font-size:12px}.select{border:1px solid #ddd;border-radius:4px;padding:6px 10px;margin-top:4px}
.opt{margin:4px 0}.buttons{display:flex;flex-wrap:wrap;gap:8px;margin-top:14px}
.btn{box-sizing:border-box;flex:1 1 30%;text-align:center;border-radius:16px;padding:6px 10px;border:1px solid transparent}
.s1{background:#2b6cdf;color:#fff}.s2{border-color:#2b6cdf;color:#2b6cdf}.s3{background:#f2f2f2;color:#555}
.s4{background:#fff;color:#e64340;border-color:#eee}.grey{background:#f2f2f2;color:#b2b2b2;border-color:#f2f2f2;flex-basis:100%}";

/// The card (a `template_card` object, as sent or as [`crate::FakeWecom::card_as_seen`]
/// returns it) as an HTML page.
pub fn card_html(card: &Value) -> String {
    let mut h = String::new();
    let source = &card["source"];
    if let Some(desc) = str_of(&source["desc"]) {
        let color = source["desc_color"].as_i64().unwrap_or(0).clamp(0, 3);
        h += &format!("<div class=\"source c{color}\">{}</div>", esc(desc));
    }
    if let Some(title) = str_of(&card["main_title"]["title"]) {
        h += &format!("<h1>{}</h1>", esc(title));
    }
    if let Some(desc) = str_of(&card["main_title"]["desc"]) {
        h += &format!("<div class=\"desc\">{}</div>", esc(desc));
    }
    let emphasis = &card["emphasis_content"];
    if emphasis.is_object() {
        h += &format!(
            "<div class=\"emph\"><b>{}</b><span class=\"desc\">{}</span></div>",
            esc(str_of(&emphasis["title"]).unwrap_or("")),
            esc(str_of(&emphasis["desc"]).unwrap_or(""))
        );
    }
    if let Some(sub) = str_of(&card["sub_title_text"]) {
        h += &format!("<div class=\"sub\">{}</div>", esc(sub));
    }
    let rows = items(&card["horizontal_content_list"]);
    if !rows.is_empty() {
        h += "<div class=\"rows\">";
        for row in rows {
            let class = if row["type"].as_i64().unwrap_or(0) == 0 {
                "val"
            } else {
                "val link"
            };
            let value = str_of(&row["value"])
                .or(str_of(&row["userid"]))
                .unwrap_or("");
            h += &format!(
                "<div class=\"row\"><span class=\"key\">{}</span><span class=\"{class}\">{}</span></div>",
                esc(str_of(&row["keyname"]).unwrap_or("")),
                esc(value)
            );
        }
        h += "</div>";
    }
    let jumps = items(&card["jump_list"]);
    if !jumps.is_empty() {
        h += "<div class=\"jumps\">";
        for jump in jumps {
            h += &format!(
                "<div class=\"link\">{} ›</div>",
                esc(str_of(&jump["title"]).unwrap_or(""))
            );
        }
        h += "</div>";
    }
    let mut selects: Vec<&Value> = vec![&card["button_selection"]];
    selects.extend(items(&card["select_list"]));
    for select in selects.into_iter().filter(|s| s.is_object()) {
        let options = items(&select["option_list"]);
        let chosen = str_of(&select["selected_id"]);
        let shown = options
            .iter()
            .find(|o| chosen.is_none_or(|id| o["id"].as_str() == Some(id)))
            .and_then(|o| str_of(&o["text"]))
            .unwrap_or("");
        h += &format!(
            "<div class=\"question\"><div class=\"qtitle\">{}</div><div class=\"select\">{} ▾</div></div>",
            esc(str_of(&select["title"]).unwrap_or("")),
            esc(shown)
        );
    }
    let checkbox = &card["checkbox"];
    if checkbox.is_object() {
        h += "<div class=\"question\">";
        for option in items(&checkbox["option_list"]) {
            let mark = if option["is_checked"].as_bool() == Some(true) {
                "☑"
            } else {
                "☐"
            };
            h += &format!(
                "<div class=\"opt\">{mark} {}</div>",
                esc(str_of(&option["text"]).unwrap_or(""))
            );
        }
        h += "</div>";
    }
    h += &buttons(card);
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=420\"><title>{}</title><style>{STYLE}</style></head>\n<body><div class=\"phone\"><div class=\"card\">{h}</div></div></body></html>\n",
        esc(str_of(&card["main_title"]["title"]).unwrap_or("template card"))
    )
}

/// The buttons, or the one grey bar that replaced them.
fn buttons(card: &Value) -> String {
    if let Some(replaced) = str_of(&card["replace_text"]) {
        return format!(
            "<div class=\"buttons\"><span class=\"btn grey\">{}</span></div>",
            esc(replaced)
        );
    }
    let mut pills: Vec<(i64, &str)> = items(&card["button_list"])
        .iter()
        .map(|b| {
            (
                b["style"].as_i64().unwrap_or(1).clamp(1, 4),
                str_of(&b["text"]).unwrap_or(""),
            )
        })
        .collect();
    if let Some(submit) = str_of(&card["submit_button"]["text"]) {
        pills.push((1, submit));
    }
    if pills.is_empty() {
        return String::new();
    }
    let inner: String = pills
        .iter()
        .map(|(style, text)| format!("<span class=\"btn s{style}\">{}</span>", esc(text)))
        .collect();
    format!("<div class=\"buttons\">{inner}</div>")
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn str_of(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| !s.is_empty())
}

/// HTML-escape text for element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
