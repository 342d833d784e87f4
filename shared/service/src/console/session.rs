//! Signing in to the console and proving every request comes from a signed-in page.
//!
//! The admin signs in with their admin API token (pasted) or a one-time sign-in link
//! (`POST /admin/console-link`, or printed by `make dev`). Either way the console sets a
//! session cookie of its own kind of token (never the API token itself): `HttpOnly`,
//! `SameSite=Strict`, `Secure` except on loopback, 12 hours at most. Every form carries an
//! anti-CSRF token derived from the session, and a state-changing request from another
//! origin is refused even before that.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, FromRequest, FromRequestParts, OriginalUri, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use connector::{TenantId, Timestamp};

use super::page::{Notice, Shell, render};
use super::{ConsoleError, ConsoleResult, HOME};
use crate::app::App;
use crate::auth::{AdminAuth, AuthError, TokenKind};
use crate::http::error::ApiError;

const COOKIE: &str = "console_session";
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a sign-in link may wait to be opened.
pub const SIGN_IN_LINK_LIFETIME: Duration = Duration::from_secs(3600);

/// A signed-in admin: the tenant every engine call of the request is made for.
pub struct Session {
    pub tenant: TenantId,
    /// The tenant's unread notifications, for the header's bell.
    pub unread_notifications: usize,
    /// The cookie's token: what the form's CSRF token is checked against.
    token: String,
    csrf: String,
}

impl Session {
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// A button that posts to `action` with `hidden` fields and this session's CSRF token.
    pub fn post_button(&self, action: &str, hidden: &[(&str, &str)], label: &str) -> Markup {
        html! {
            form method="post" action=(action) {
                (self.csrf_field())
                @for (name, value) in hidden {
                    input type="hidden" name=(name) value=(value);
                }
                button type="submit" { (label) }
            }
        }
    }
}

fn admin_auth(app: &App) -> Result<&AdminAuth, ConsoleError> {
    app.admin_auth
        .as_ref()
        .ok_or(ConsoleError::from(AuthError::NotConfigured))
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The request's host is this machine: `make dev` serves plain HTTP there.
fn is_loopback(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || port.is_empty() => name,
        _ if host.starts_with('[') => host.split(']').next().map_or("", |h| h),
        _ => host,
    };
    matches!(
        name.trim_start_matches('['),
        "127.0.0.1" | "localhost" | "::1"
    )
}

fn session_cookie(headers: &HeaderMap, value: &str, max_age: u64) -> String {
    let secure = if is_loopback(headers) { "" } else { "; Secure" };
    format!("{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// A page of our own asked for this change: an `Origin` header, when the browser sends
/// one, names this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

const CROSS_SITE: &str = "This form was sent from another site.";

/// A form the console cannot trust came from one of its own pages (403).
fn csrf_refused(detail: &str) -> ConsoleError {
    ConsoleError(ApiError::new(StatusCode::FORBIDDEN, "csrf_refused", detail))
}

/// Not signed in (or the session ended): to the sign-in page, then back here.
pub struct SignInFirst {
    back_to: String,
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let query =
            serde_urlencoded::to_string([("next", self.back_to.as_str())]).unwrap_or_default();
        Redirect::to(&format!("/console/sign-in?{query}")).into_response()
    }
}

impl FromRequestParts<Arc<App>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let auth = admin_auth(app).map_err(IntoResponse::into_response)?;
        let token = cookie_value(&parts.headers, COOKIE).unwrap_or("");
        match auth.verify_kind(TokenKind::ConsoleSession, token, Timestamp::now()) {
            Ok(verified) => Ok(Session {
                unread_notifications: unread_notifications(app, &verified.tenant).await,
                tenant: verified.tenant,
                token: token.to_owned(),
                csrf: auth.csrf_token(token),
            }),
            Err(_) => Err(SignInFirst {
                // The full path: inside the nested console router `uri` lacks `/console`.
                back_to: parts
                    .extensions
                    .get::<OriginalUri>()
                    .and_then(|u| u.0.path_and_query())
                    .map_or(HOME.to_owned(), |p| p.to_string()),
            }
            .into_response()),
        }
    }
}

/// The bell's count; a page still renders when the feed cannot be read.
async fn unread_notifications(app: &App, tenant: &TenantId) -> usize {
    match app.engine.notification_feed(tenant).await {
        Ok(feed) => feed.unread,
        Err(e) => {
            tracing::warn!(error = %e, %tenant, "could not read the notification feed");
            0
        }
    }
}

/// A state-changing form from a signed-in page: the session, its CSRF token checked, and
/// the form's other fields.
pub struct Posted {
    pub session: Session,
    pub fields: HashMap<String, String>,
}

impl Posted {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

impl FromRequest<Arc<App>> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, Response> {
        if !same_origin(req.headers()) {
            return Err(csrf_refused(CROSS_SITE).into_response());
        }
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, app).await?;
        let Form(fields) =
            Form::<HashMap<String, String>>::from_request(Request::from_parts(parts, body), app)
                .await
                .map_err(|e| ConsoleError(ApiError::bad_request(e.body_text())).into_response())?;
        let auth = admin_auth(app).map_err(IntoResponse::into_response)?;
        let given = fields.get("csrf").map_or("", String::as_str);
        if !auth.check_csrf(&session.token, given) {
            return Err(csrf_refused(
                "This form is out of date (or was not sent by the console). Reload the page and try again.",
            )
            .into_response());
        }
        Ok(Posted { session, fields })
    }
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

/// Only a console path, so a crafted link cannot send the admin elsewhere.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => HOME,
    }
}

fn sign_in_form(next: &str, failed: Option<String>) -> Markup {
    render(
        Shell {
            notice: failed.map(Notice::Failed),
            ..Shell::bare("Sign in")
        },
        html! {
            h1 { "Sign in" }
            p { "Paste your admin token (the one the admin API takes as a bearer token), or open the one-time sign-in link you were given." }
            form method="post" action="/console/sign-in" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Admin token" }
                input id="token" name="token" type="password" autocomplete="off" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub async fn sign_in_page(Query(q): Query<SignInQuery>) -> Markup {
    sign_in_form(safe_next(q.next.as_deref()), None)
}

pub async fn sign_in(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(fields): Form<HashMap<String, String>>,
) -> ConsoleResult {
    if !same_origin(&headers) {
        return Err(csrf_refused(CROSS_SITE));
    }
    let next = safe_next(fields.get("next").map(String::as_str)).to_owned();
    let token = fields.get("token").map_or("", |t| t.trim());
    let auth = admin_auth(&app)?;
    match auth.verify_kind(TokenKind::Api, token, Timestamp::now()) {
        // A session never outlives the token it came from.
        Ok(verified) => Ok(start_session(
            auth,
            &headers,
            &verified.tenant,
            Some(verified.expires_at),
            &next,
        )),
        Err(e) => {
            tracing::warn!(reason = %e, "console sign-in refused");
            Ok((
                StatusCode::UNAUTHORIZED,
                sign_in_form(&next, Some(format!("That token was refused: {e}."))),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

pub async fn sign_in_link(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<LinkQuery>,
) -> ConsoleResult {
    let auth = admin_auth(&app)?;
    let token = q.token.unwrap_or_default();
    let refused = |detail: String| {
        tracing::warn!(%detail, "console sign-in link refused");
        Ok((StatusCode::UNAUTHORIZED, sign_in_form(HOME, Some(detail))).into_response())
    };
    let verified = match auth.verify_kind(TokenKind::SignInLink, &token, Timestamp::now()) {
        Ok(verified) => verified,
        Err(e) => {
            return refused(format!(
                "That sign-in link does not work: {e}. Paste your admin token instead."
            ));
        }
    };
    let signature = token.rsplit_once('.').map_or("", |(_, s)| s);
    if !app
        .engine
        .spend_once(&format!("console-link#{signature}"), verified.expires_at)
        .await?
    {
        return refused("That sign-in link was already used: each link signs in once. Paste your admin token, or ask for a new link.".into());
    }
    // The link's own expiry bounds when it may be opened, not the session it starts.
    Ok(start_session(auth, &headers, &verified.tenant, None, HOME))
}

/// A new one-time sign-in link for `tenant`, relative to the service's base URL.
pub fn sign_in_link_path(
    auth: &AdminAuth,
    tenant: &TenantId,
    now: Timestamp,
) -> (String, Timestamp) {
    let expires_at = now.plus(SIGN_IN_LINK_LIFETIME);
    let token = auth.issue_kind(TokenKind::SignInLink, tenant, expires_at);
    let query = serde_urlencoded::to_string([("token", token.expose())]).unwrap_or_default();
    (format!("/console/sign-in/link?{query}"), expires_at)
}

fn start_session(
    auth: &AdminAuth,
    headers: &HeaderMap,
    tenant: &TenantId,
    credential_expires: Option<Timestamp>,
    next: &str,
) -> Response {
    let now = Timestamp::now();
    let longest = now.plus(SESSION_LIFETIME);
    let expires_at = credential_expires.map_or(longest, |c| c.min(longest));
    let token = auth.issue_kind(TokenKind::ConsoleSession, tenant, expires_at);
    let max_age = (expires_at.as_secs() - now.as_secs()).max(0) as u64;
    tracing::info!(tenant = %tenant, "console session started");
    (
        [(
            header::SET_COOKIE,
            session_cookie(headers, token.expose(), max_age),
        )],
        Redirect::to(next),
    )
        .into_response()
}

pub async fn sign_out(headers: HeaderMap, posted: Posted) -> Response {
    tracing::info!(tenant = %posted.session.tenant, "console session ended");
    (
        [(header::SET_COOKIE, session_cookie(&headers, "", 0))],
        Redirect::to("/console/sign-in"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn the_cookie_is_secure_except_on_loopback() {
        for host in ["127.0.0.1:8080", "localhost", "[::1]:9000"] {
            assert!(is_loopback(&headers(&[(header::HOST, host)])), "{host}");
        }
        for host in [
            "api.example.com",
            "api.example.com:443",
            "127.0.0.1.example.com",
            "",
        ] {
            assert!(!is_loopback(&headers(&[(header::HOST, host)])), "{host}");
        }
        let cookie = session_cookie(&headers(&[(header::HOST, "api.example.com")]), "t", 60);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(cookie.ends_with("; Secure"));
    }

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/console/log/abc")), "/console/log/abc");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/admin/x",
            "/console\\x",
        ] {
            assert_eq!(safe_next(Some(bad)), HOME, "{bad}");
        }
        assert_eq!(safe_next(None), HOME);
    }

    #[test]
    fn a_form_from_another_origin_is_refused() {
        let ours = headers(&[
            (header::HOST, "a.example"),
            (header::ORIGIN, "https://a.example"),
        ]);
        let theirs = headers(&[
            (header::HOST, "a.example"),
            (header::ORIGIN, "https://b.example"),
        ]);
        assert!(same_origin(&ours));
        assert!(!same_origin(&theirs));
        assert!(same_origin(&headers(&[(header::HOST, "a.example")])));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[(header::COOKIE, "a=1; console_session=tok; b=2")]);
        assert_eq!(cookie_value(&h, COOKIE), Some("tok"));
        assert_eq!(cookie_value(&HeaderMap::new(), COOKIE), None);
    }
}
