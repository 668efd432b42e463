//! The dashboard: a page, a script and a style sheet compiled into the binary and served at
//! `/dashboard`. The page reads the server's own JSON routes (with the key the user types, kept
//! in the tab's session storage) and draws its charts as SVG itself, so nothing is fetched
//! from anywhere else, at build time or in the browser; the content security policy says so.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../dashboard/index.html");
const SCRIPT: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/app.css");

/// Only this origin, no inline script or style, no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; \
                      base-uri 'none'; form-action 'self'";

fn file(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `/dashboard`: the page.
pub async fn index() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

/// `/dashboard/app.js`.
pub async fn script() -> Response {
    file(SCRIPT, "text/javascript; charset=utf-8")
}

/// `/dashboard/app.css`.
pub async fn style() -> Response {
    file(STYLE, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Self-contained: every script, style sheet and request is a path on this server.
    #[test]
    fn nothing_is_fetched_from_elsewhere() {
        for (name, text) in [("index", INDEX), ("script", SCRIPT), ("style", STYLE)] {
            let outside = text
                .match_indices("http")
                .filter(|(k, _)| !text[*k..].starts_with("http://www.w3.org/2000/svg"))
                .count();
            assert_eq!(outside, 0, "{name} names an address elsewhere");
            assert!(!text.contains("//cdn"), "{name}");
        }
        assert!(INDEX.contains("src=\"/dashboard/app.js\""));
        assert!(INDEX.contains("href=\"/dashboard/app.css\""));
        // No inline script or style: the policy would block them.
        assert_eq!(INDEX.matches("<script").count(), 1);
        assert!(!INDEX.contains("style=") && !SCRIPT.contains("style:"));
    }
}
