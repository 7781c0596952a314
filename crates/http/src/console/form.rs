//! Console form bodies: lenient about repeats (a checkbox group sends one
//! name many times), strict about encoding, and checked for cross-site
//! origin before anything else happens.

use axum::http::{HeaderMap, header};

/// A decoded `application/x-www-form-urlencoded` body, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(body: &[u8]) -> Option<Form> {
        let mut pairs = Vec::new();
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            pairs.push((
                crate::form::decode_component(name)?,
                crate::form::decode_component(value)?,
            ));
        }
        Some(Form(pairs))
    }

    /// The first value of `name`, or "" when absent.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The value trimmed, `None` when empty.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        Some(self.get(name).trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Every value of `name` (checkbox groups).
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn confirmed(&self) -> bool {
        self.get("confirm") == "yes"
    }

    /// Every field but the CSRF token and the confirmation, to carry
    /// through a confirmation page.
    pub(crate) fn carried(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(n, _)| n != "csrf" && n != "confirm")
            .cloned()
            .collect()
    }
}

/// A browser names the page a form was posted from in `Origin`; a POST
/// from another site's page is refused even before the CSRF token is
/// looked at (SameSite=Strict already keeps the cookie away from it).
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Older browsers and non-browser clients send none; the CSRF
        // token still protects them.
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    origin.split_once("://").is_some_and(|(scheme, authority)| {
        matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn parses_repeats_in_order_and_refuses_bad_encoding() {
        let form = Form::parse(b"a=1&g=password&g=refresh_token&n=x+y&e=").unwrap();
        assert_eq!(form.get("a"), "1");
        assert_eq!(form.all("g"), ["password", "refresh_token"]);
        assert_eq!(form.get("n"), "x y");
        assert_eq!(form.text("e"), None);
        assert_eq!(form.get("missing"), "");
        assert!(Form::parse(b"a=%FF").is_none());
        assert!(Form::parse(b"a=%00").is_none());
    }

    #[test]
    fn carried_fields_drop_csrf_and_confirm() {
        let form = Form::parse(b"csrf=t&confirm=yes&locked=true").unwrap();
        assert!(form.confirmed());
        assert_eq!(form.carried(), [("locked".to_owned(), "true".to_owned())]);
    }

    #[test]
    fn origin_must_match_the_host() {
        let headers = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
            if let Some(o) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            h
        };
        assert!(same_origin(&headers(None)));
        assert!(same_origin(&headers(Some("http://127.0.0.1:8080"))));
        assert!(!same_origin(&headers(Some("http://evil.example"))));
        assert!(!same_origin(&headers(Some("null"))));
        assert!(!same_origin(&headers(Some("http://127.0.0.1:8081"))));
    }
}
