//! The consent page a browser (or a headless client) clicks through, and the error page for
//! authorization requests that must not redirect anywhere.
//!
//! Atlassian's consent screen asks the user to pick the site to grant (a site dropdown: "The
//! app directs the user to an Atlassian screen that prompts them to grant access to their data
//! on the Atlassian site", https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/);
//! more sites join the same grant through more consents
//! (https://developer.atlassian.com/cloud/oauth/getting-started/faq), and the flow never says
//! which site was picked (community.developer.atlassian.com/t/76395). The fake offers every
//! configured site as a checkbox named `site` (value = cloud id), all checked, so one consent
//! can grant one site or several; Accept grants exactly the checked ones (none checked: a 400
//! page). ASSUMPTION (undocumented): the real screen is a single-site dropdown; the fake's
//! checkboxes are a superset (one checked box is the real case), and the page's HTML is the
//! fake's own: only our tests drive it (`tests/src/chromium.rs`, `FakeAtlassian`'s consent
//! helpers), never production code.

use super::respond::escape_html;

/// A site offered on the consent page.
pub(crate) struct ConsentSite {
    pub cloud_id: String,
    pub name: String,
    pub url: String,
}

pub(crate) struct ConsentPage<'a> {
    pub client_id: &'a str,
    pub user_name: &'a str,
    pub sites: Vec<ConsentSite>,
    pub scopes: &'a [String],
    /// The authorization parameters, carried through the form as hidden fields.
    pub hidden: Vec<(&'static str, String)>,
}

impl ConsentPage<'_> {
    pub(crate) fn render(&self) -> String {
        let sites: String = self
            .sites
            .iter()
            .map(|s| {
                format!(
                    "<li><label><input type=\"checkbox\" name=\"site\" value=\"{id}\" checked> \
                     {name} ({url})</label></li>",
                    id = escape_html(&s.cloud_id),
                    name = escape_html(&s.name),
                    url = escape_html(&s.url),
                )
            })
            .collect();
        let scopes: String = self
            .scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape_html(s)))
            .collect();
        let hidden: String = self
            .hidden
            .iter()
            .map(|(k, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                    escape_html(v)
                )
            })
            .collect();
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Authorize {client}</title></head>\n<body><main>\
             <h1>{client} is requesting access to your Atlassian account</h1>\
             <p>Signed in as <strong>{user}</strong> (fake Atlassian Cloud).</p>\
             <form method=\"post\" action=\"/authorize/decision\">{hidden}\
             <fieldset><legend>Use app on</legend><ul>{sites}</ul></fieldset>\
             <h2>Permissions</h2><ul>{scopes}</ul>\
             <button type=\"submit\" id=\"accept\" name=\"decision\" value=\"accept\">Accept</button> \
             <button type=\"submit\" id=\"deny\" name=\"decision\" value=\"deny\">Deny</button>\
             </form></main></body></html>\n",
            client = escape_html(self.client_id),
            user = escape_html(self.user_name),
        )
    }
}

pub(crate) fn error_page(message: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorization error</title></head>\n\
         <body><main><h1>Something went wrong</h1><p role=\"alert\">{}</p></main></body></html>\n",
        escape_html(message)
    )
}
