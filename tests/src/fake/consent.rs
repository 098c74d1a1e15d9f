//! The consent page a browser (or a headless client) clicks through, and the error page for
//! authorization requests that must not redirect anywhere.

use super::respond::escape_html;

pub(crate) struct ConsentPage<'a> {
    pub client_id: &'a str,
    pub user_name: &'a str,
    pub sites: Vec<(String, String)>,
    pub scopes: &'a [String],
    /// The authorization parameters, carried through the form as hidden fields.
    pub hidden: Vec<(&'static str, String)>,
}

impl ConsentPage<'_> {
    pub(crate) fn render(&self) -> String {
        let sites: String = self
            .sites
            .iter()
            .map(|(name, url)| {
                format!(
                    "<li>{} (<a href=\"{}\">{}</a>)</li>",
                    escape_html(name),
                    escape_html(url),
                    escape_html(url)
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
             <h2>Sites</h2><ul>{sites}</ul>\
             <h2>Permissions</h2><ul>{scopes}</ul>\
             <form method=\"post\" action=\"/authorize/decision\">{hidden}\
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
