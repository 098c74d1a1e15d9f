//! The pages a person sees after consenting. Plain, accessible HTML; every dynamic value is
//! escaped; no scripts; headers forbid framing, sniffing, caching and referrers (the callback
//! URL carries a code).

use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use shared::ids::Product;
use shared::store::choices::OfferedSite;
use url::Url;

pub struct Page {
    status: StatusCode,
    title: String,
    body_html: String,
}

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
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

fn product_name(p: Product) -> &'static str {
    match p {
        Product::Jira => "Jira",
        Product::Confluence => "Confluence",
    }
}

impl Page {
    pub fn error(status: StatusCode, title: &str, text: &str, correlation_id: &str) -> Page {
        Page {
            status,
            title: title.to_owned(),
            body_html: format!(
                "<p>{}</p><p class=\"ref\">Reference: <code>{}</code></p>",
                escape(text),
                escape(correlation_id)
            ),
        }
    }

    pub fn denied(return_url: Option<&Url>, correlation_id: &str) -> Page {
        let back = return_url
            .map(|u| {
                let mut u = u.clone();
                u.query_pairs_mut().append_pair("status", "denied");
                format!(
                    "<p><a href=\"{}\">Return to the platform</a></p>",
                    escape(u.as_str())
                )
            })
            .unwrap_or_default();
        Page {
            status: StatusCode::OK,
            title: "Connection not authorized".into(),
            body_html: format!(
                "<p>You chose not to grant access, so nothing was connected and nothing was stored.</p>{back}\
                 <p class=\"ref\">Reference: <code>{}</code></p>",
                escape(correlation_id)
            ),
        }
    }

    pub fn connected(product: Product, sites: &[&str], correlation_id: &str) -> Page {
        let items: String = sites
            .iter()
            .map(|s| format!("<li>{}</li>", escape(s)))
            .collect();
        Page {
            status: StatusCode::OK,
            title: format!("{} connected", product_name(product)),
            body_html: format!(
                "<p>Access was granted for:</p><ul>{items}</ul><p>You can close this window.</p>\
                 <p class=\"ref\">Reference: <code>{}</code></p>",
                escape(correlation_id)
            ),
        }
    }

    /// The site chooser: the grant lists several sites and the platform named none. One
    /// checkbox per site (none preselected), posted back with the single-use selection; works
    /// without JavaScript. `action` is our callback URL.
    pub fn chooser(
        product: Product,
        sites: &[OfferedSite],
        selection: &str,
        action: &str,
        correlation_id: &str,
    ) -> Page {
        let items: String = sites
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "<li><label><input type=\"checkbox\" name=\"site\" id=\"site-{i}\" value=\"{id}\"> \
                     <strong>{name}</strong> <span class=\"url\">{url}</span></label></li>",
                    id = escape(&s.cloud_id),
                    name = escape(if s.name.is_empty() { &s.url } else { &s.name }),
                    url = escape(&s.url),
                )
            })
            .collect();
        Page {
            status: StatusCode::OK,
            title: format!("Choose the {} site to connect", product_name(product)),
            body_html: format!(
                "<p>Your Atlassian account has granted this app access to more than one site. \
                 Choose the site (or sites) of this organisation; only those are connected.</p>\
                 <form method=\"post\" action=\"{action}\">\
                 <input type=\"hidden\" name=\"selection\" value=\"{selection}\">\
                 <ul class=\"sites\">{items}</ul>\
                 <button type=\"submit\" id=\"connect\">Connect</button></form>\
                 <p class=\"ref\">This choice works once, for a few minutes. Reference: <code>{cid}</code></p>",
                action = escape(action),
                selection = escape(selection),
                cid = escape(correlation_id),
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn html(&self) -> String {
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;\
             margin:4rem auto;padding:0 1rem;line-height:1.5;color:#172b4d}}.ref{{color:#5e6c84;\
             font-size:.875rem}}</style></head><body><main><h1>{title}</h1>{body}</main></body></html>",
            title = escape(&self.title),
            body = self.body_html
        )
    }

    pub fn into_response(self) -> Response<Body> {
        let mut resp = Response::new(Body::Text(self.html()));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        secure_headers(resp.headers_mut());
        resp
    }
}

pub(crate) fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_dynamic_is_escaped() {
        let p = Page::connected(
            Product::Jira,
            &["https://x.atlassian.net/<script>"],
            "id\"><b>",
        );
        let html = p.html();
        assert!(
            !html.contains("<script>") && !html.contains("\"><b>"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn the_chooser_lists_every_site_unchecked_and_escapes_them() {
        let sites = [
            OfferedSite {
                cloud_id: "c-1".into(),
                url: "https://a.atlassian.net".into(),
                name: "Acme <b>".into(),
            },
            OfferedSite {
                cloud_id: "c-2".into(),
                url: "https://b.atlassian.net".into(),
                name: String::new(),
            },
        ];
        let html = Page::chooser(Product::Jira, &sites, "sel\"x", "/callback", "ref").html();
        assert!(
            html.contains("value=\"c-1\"") && html.contains("value=\"c-2\""),
            "{html}"
        );
        assert!(
            html.contains("Acme &lt;b&gt;") && !html.contains("<b>"),
            "{html}"
        );
        assert!(
            html.contains("sel&quot;x") && !html.contains("checked"),
            "{html}"
        );
        assert!(
            html.contains("method=\"post\" action=\"/callback\""),
            "{html}"
        );
    }

    #[test]
    fn denied_page_links_back_with_status() {
        let url = Url::parse("https://p.example.com/back").unwrap_or_else(|e| panic!("{e}"));
        let html = Page::denied(Some(&url), "c").html();
        assert!(
            html.contains("https://p.example.com/back?status=denied"),
            "{html}"
        );
    }
}
