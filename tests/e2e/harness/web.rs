//! The pages as a browser sees them over raw HTTP: a cookie jar that signs in through the
//! form, and readers of the HTML that come back (form values, error pages).

use super::http::{pct, Resp};
use super::kura::Kura;

/// A browser's cookie jar over raw HTTP: the session cookie and the sign-in form's cookie.
pub struct Browser<'a> {
    k: &'a Kura,
    pub cookies: Vec<(String, String)>,
}

pub fn set_cookies(r: &Resp) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.clone())
        .collect()
}

/// The value of `name="…"` in the first `<input … name="NAME" value="…">` of a page.
pub fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name} in:\n{html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').expect("closing quote")].to_string()
}

/// One spelling for escaped characters (`&#60;` and `&lt;` are the same to a browser).
pub fn norm(html: &str) -> String {
    html.replace("&#60;", "&lt;")
        .replace("&#62;", "&gt;")
        .replace("&#38;", "&amp;")
        .replace("&#34;", "&quot;")
        .replace("&#39;", "&apos;")
}

/// The heading and message of an error page (the rest names the visitor and the address).
pub fn error_text(html: &str) -> String {
    let at = html
        .find("<section class=\"error\">")
        .unwrap_or_else(|| panic!("not an error page:\n{html}"));
    let rest = &html[at..];
    let end = rest.find("</p>").expect("a message");
    rest[..end].to_string()
}

impl<'a> Browser<'a> {
    pub fn new(k: &'a Kura) -> Browser<'a> {
        Browser {
            k,
            cookies: Vec::new(),
        }
    }
    pub fn absorb(&mut self, r: &Resp) {
        for c in set_cookies(r) {
            let pair = c.split(';').next().unwrap_or("");
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            self.cookies.retain(|(cn, _)| cn != n);
            if !v.is_empty() && !c.contains("Max-Age=0") {
                self.cookies.push((n.to_string(), v.to_string()));
            }
        }
    }
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    pub fn get(&mut self, path: &str) -> Resp {
        let mut req = self.k.req("GET", path);
        if !self.cookies.is_empty() {
            req = req.header("Cookie", &self.cookie_header());
        }
        let r = req.send();
        self.absorb(&r);
        r
    }
    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
            .collect();
        let mut req = self
            .k
            .req("POST", path)
            .header("Content-Type", "application/x-www-form-urlencoded");
        if !self.cookies.is_empty() {
            req = req.header("Cookie", &self.cookie_header());
        }
        let r = req.body(body.join("&")).send();
        self.absorb(&r);
        r
    }
    /// Signs in through the form; returns the response to the form's POST. A signed-in
    /// browser is sent on from `/login`, so the form is fetched without the session cookie
    /// (as after opening the page in another tab before signing out).
    pub fn sign_in(&mut self, user: &str, password: &str) -> Resp {
        let session = self
            .cookies
            .iter()
            .position(|(n, _)| n == "kura_session")
            .map(|i| self.cookies.remove(i));
        let form = self.get("/login");
        self.cookies.extend(session);
        assert_eq!(form.status, 200, "{}", form.describe());
        let csrf = input_value(&form.text(), "csrf");
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", "/"),
                ("user", user),
                ("password", password),
            ],
        )
    }
    pub fn csrf(&mut self) -> String {
        let s = self.get("/settings");
        assert_eq!(s.status, 200, "{}", s.describe());
        input_value(&s.text(), "csrf")
    }
    pub fn session(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(n, _)| n == "kura_session")
            .map(|(_, v)| v.clone())
    }
}
