//! Notifications: the tenant's feed, newest first, open incidents marked, each linking to
//! its integration, with Mark read and Mark all read. The bell in the header counts the
//! unread ones.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use maud::html;

use connector::NotificationId;

use super::page::{self, Shell};
use super::session::{Posted, Session};
use super::{ConsoleResult, path_id};
use crate::app::App;
use crate::notifications::{link, title};

const FEED: &str = "/console/notifications";

pub async fn feed(State(app): State<Arc<App>>, session: Session) -> ConsoleResult {
    let feed = app.engine.notification_feed(&session.tenant).await?;
    let body = html! {
        h1 { "Notifications" }
        p.muted {
            "One per incident: it opens when a connection needs you and closes by itself when the condition clears. Closed ones stay 30 days."
        }
        @if feed.unread > 0 {
            (session.post_button(&format!("{FEED}/read"), &[], "Mark all read"))
        }
        @if feed.notifications.is_empty() {
            p.empty { "Nothing needs you: every connection is working." }
        }
        ul.notifications {
            @for n in &feed.notifications {
                li.notification.open[n.is_open()].unread[n.read_at.is_none()] id={ "n-" (n.id) } {
                    h2 {
                        a href=(link(n)) { (title(n.id.kind)) }
                        " "
                        @if n.is_open() { span.badge.failed { "Open" } } @else { span.badge { "Closed" } }
                    }
                    p { (page::provider_name(n.provider)) " connection " code { (n.id.connection_id) } ": " (n.detail) }
                    p.muted {
                        "Opened " (page::time(n.opened_at))
                        @if let Some(closed) = n.closed_at { ", closed " (page::time(closed)) }
                    }
                    @if n.read_at.is_none() {
                        (session.post_button(&format!("{FEED}/{}/read", n.id), &[], "Mark read"))
                    }
                }
            }
        }
    };
    let shell = Shell {
        session: Some(&session),
        ..Shell::bare("Notifications")
    };
    Ok((StatusCode::OK, page::render(shell, body)).into_response())
}

pub async fn read(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    posted: Posted,
) -> ConsoleResult {
    let id = path_id::<NotificationId>(&id)?;
    app.engine
        .mark_notification_read(&posted.session.tenant, &id)
        .await?;
    Ok(Redirect::to(FEED).into_response())
}

pub async fn read_all(State(app): State<Arc<App>>, posted: Posted) -> ConsoleResult {
    app.engine
        .mark_all_notifications_read(&posted.session.tenant)
        .await?;
    Ok(Redirect::to(FEED).into_response())
}
