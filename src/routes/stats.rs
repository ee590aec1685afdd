//! The stats pages: `/stats` (server-wide traffic by protocol, status classes, latency, routes)
//! and `/videos/{id}/stats` (views over time, the retention curve), charts drawn as inline SVG.
//!
//! Access: `/stats` is for admins and `/videos/{id}/stats` (like `/api/videos/{id}/views`) for
//! the video's owner and admins, unless `stats.public` (default false) opens them to everyone.

use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::accounts::MaybeUser;
use crate::chart::{LineChart, Series, Unit};
use crate::db::videos::Video;
use crate::error::AppError;
use crate::metrics::{CLASSES, PROTOCOLS};
use crate::page::Chrome;
use crate::routes::pages::render;
use crate::routes::videos::visible;
use crate::state::AppState;
use crate::stats::report::{self, Percentiles, Window};

/// `GET /stats`, `GET /videos/{id}/stats`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/stats", get(server)).route("/videos/{id}/stats", get(video))
}

#[derive(Deserialize)]
struct WindowQuery {
    window: Option<Window>,
}

/// A link to the same page over another window.
struct WindowLink {
    name: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "stats.html")]
struct ServerPage {
    chrome: Chrome,
    windows: Vec<WindowLink>,
    totals: Vec<(&'static str, String)>,
    requests_chart: String,
    bytes_chart: String,
    statuses: Vec<(&'static str, u64, String)>,
    latency: Vec<(String, String, String, String)>,
    routes: Vec<[String; 6]>,
    flush: String,
}

#[derive(Template)]
#[template(path = "video_stats.html")]
struct VideoPage {
    chrome: Chrome,
    id: String,
    title: String,
    windows: Vec<WindowLink>,
    totals: Vec<(&'static str, String)>,
    views_chart: String,
    retention_chart: String,
}

/// Whose statistics a page shows.
pub(crate) enum Subject<'a> {
    /// The whole server's: admins only.
    Server,
    /// One video's (already found, and visible to the caller): its owner and admins.
    Video(&'a Video),
}

/// Whether `user` may see the statistics of `subject`: `Ok(None)` yes, `Ok(Some(redirect))`
/// to the sign-in page for an anonymous browser, an error otherwise (401 for an anonymous
/// client that wants JSON, 403 for someone else's; the caller has answered 404 for a video it may
/// not see).
pub(crate) fn gate(
    state: &AppState,
    MaybeUser(user): &MaybeUser,
    wants_json: bool,
    subject: Subject,
) -> Result<Option<Redirect>, AppError> {
    if state.config.stats.public {
        return Ok(None);
    }
    let Some(user) = user else {
        if wants_json {
            return Err(AppError::Unauthorized("sign in first: statistics are for their owners".into()));
        }
        return Ok(Some(Redirect::to("/signin")));
    };
    // `may_manage(None)`: what no one owns is the admins' alone, the server included.
    let (allowed, refusal) = match subject {
        Subject::Server => (user.may_manage(None), "the server's statistics are for admins"),
        Subject::Video(video) => {
            (user.may_manage(video.owner_id()), "a video's statistics are for its owner and the admins")
        }
    };
    if allowed { Ok(None) } else { Err(AppError::Forbidden(refusal.into())) }
}

/// `?window=hour|day|month`, day by default; anything else is a 400 that says what is allowed.
fn window(query: Result<Query<WindowQuery>, QueryRejection>) -> Result<Window, AppError> {
    let Query(query) = query.map_err(|_| AppError::BadRequest("window must be hour, day or month".into()))?;
    Ok(query.window.unwrap_or_default())
}

async fn server(
    State(state): State<AppState>,
    user: MaybeUser,
    headers: HeaderMap,
    query: Result<Query<WindowQuery>, QueryRejection>,
    chrome: Chrome,
) -> Result<Response, AppError> {
    if let Some(sign_in) = gate(&state, &user, crate::error::prefers_json(&headers), Subject::Server)? {
        return Ok(sign_in.into_response());
    }
    let window = window(query)?;
    let report = report::server(&state.db, window, crate::db::now_secs()).await?;
    let total: u64 = report.statuses.iter().sum();
    let bytes: u64 = report.bytes.iter().flatten().sum();
    let by_protocol = |id, title: &str, what: &str, values: &[Vec<u64>; 3], unit| LineChart {
        id,
        title: format!("{title} {}", per(window)),
        desc: format!("{what} over HTTP/1.1, HTTP/2 and HTTP/3, {}, UTC.", span(window)),
        x: axis(&report.starts, window),
        series: PROTOCOLS
            .iter()
            .zip(values)
            .map(|(name, v)| Series {
                name: (*name).to_owned(),
                values: v.iter().map(|&n| n as f64).collect(),
            })
            .collect(),
        unit,
        dots: false,
    };
    let page = ServerPage {
        chrome,
        windows: links(window),
        totals: vec![
            ("Requests", Unit::Count.format(total as f64)),
            ("Bandwidth", Unit::Bytes.format(bytes as f64)),
            ("Views counted", report.views.to_string()),
            ("Latency, all responses", latency_text(report.overall)),
        ],
        requests_chart: by_protocol("requests", "Requests", "Responses", &report.requests, Unit::Count)
            .render(),
        bytes_chart: by_protocol("bandwidth", "Bandwidth", "Body bytes sent", &report.bytes, Unit::Bytes)
            .render(),
        statuses: CLASSES
            .iter()
            .zip(report.statuses)
            .map(|(class, n)| (*class, n, format!("{:.1} %", n as f64 * 100.0 / total.max(1) as f64)))
            .collect(),
        latency: PROTOCOLS
            .iter()
            .zip(report.latency)
            .map(|(name, p)| {
                let [p50, p90, p99] = millis(p);
                ((*name).to_owned(), p50, p90, p99)
            })
            .collect(),
        routes: report
            .routes
            .iter()
            .map(|r| {
                let [p50, _, p99] = millis(r.latency);
                let (requests, bytes) =
                    (Unit::Count.format(r.requests as f64), Unit::Bytes.format(r.bytes as f64));
                [r.route.clone(), requests, bytes, r.views.to_string(), p50, p99]
            })
            .collect(),
        flush: format!("{} s", state.config.stats.flush_interval.as_secs()),
    };
    Ok(render(&page)?.into_response())
}

async fn video(
    State(state): State<AppState>,
    user: MaybeUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<WindowQuery>, QueryRejection>,
    chrome: Chrome,
) -> Result<Response, AppError> {
    // A private video is a 404 to whoever may not see it, before the gate could say 403.
    let video = visible(&state, &id, user.0.as_ref(), &format!("/videos/{id}/stats")).await?;
    if let Some(sign_in) = gate(&state, &user, crate::error::prefers_json(&headers), Subject::Video(&video))?
    {
        return Ok(sign_in.into_response());
    }
    let window = window(query)?;
    let report = crate::stats::video(&state.views, &state.db, &video, window, crate::db::now_secs()).await?;
    let views_chart = LineChart {
        id: "views",
        title: format!("Views {}", per(window)),
        desc: format!("Views counted {}, UTC.", span(window)),
        x: axis(&report.starts, window),
        series: vec![Series {
            name: "views".into(),
            values: report.views.iter().map(|&n| n as f64).collect(),
        }],
        unit: Unit::Count,
        dots: false,
    };
    let duration = video.duration_ms.unwrap_or(0);
    let retention_chart = LineChart {
        id: "retention",
        title: "Retention over the checkpoints".into(),
        desc: "How many viewing sessions reached each checkpoint, by its position in the video.".into(),
        x: report
            .retention
            .iter()
            .map(|p| {
                (p.position, crate::routes::pages::duration(Some((p.position * duration as f64) as i64)))
            })
            .collect(),
        series: vec![Series {
            name: "sessions".into(),
            values: report.retention.iter().map(|p| p.sessions as f64).collect(),
        }],
        unit: Unit::Count,
        dots: true,
    };
    let page = VideoPage {
        chrome,
        id: id.clone(),
        title: video.title.clone(),
        windows: links(window),
        totals: vec![
            ("Views", video.view_count.to_string()),
            ("Unique viewers", report.unique_viewers.to_string()),
            (span_label(window), report.views.iter().sum::<u64>().to_string()),
        ],
        views_chart: views_chart.render(),
        retention_chart: retention_chart.render(),
    };
    Ok(render(&page)?.into_response())
}

fn links(current: Window) -> Vec<WindowLink> {
    Window::ALL
        .iter()
        .map(|&w| WindowLink { name: w.name(), label: span_label(w), current: w == current })
        .collect()
}

fn span_label(window: Window) -> &'static str {
    match window {
        Window::Hour => "Last hour",
        Window::Day => "Last 24 hours",
        Window::Month => "Last 30 days",
    }
}

fn span(window: Window) -> &'static str {
    match window {
        Window::Hour => "per minute over the last hour",
        Window::Day => "per hour over the last 24 hours",
        Window::Month => "per day over the last 30 days",
    }
}

fn per(window: Window) -> &'static str {
    match window {
        Window::Hour => "per minute",
        Window::Day => "per hour",
        Window::Month => "per day",
    }
}

/// The x axis: one point per slot, labelled with its UTC time (or date, per day).
fn axis(starts: &[i64], window: Window) -> Vec<(f64, String)> {
    starts
        .iter()
        .map(|&at| {
            let t = time::OffsetDateTime::from_unix_timestamp(at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let label = match window {
                Window::Month => format!("{:02}-{:02}", u8::from(t.month()), t.day()),
                _ => format!("{:02}:{:02}", t.hour(), t.minute()),
            };
            (at as f64, label)
        })
        .collect()
}

fn millis(p: Option<Percentiles>) -> [String; 3] {
    match p {
        Some(p) => [p.p50, p.p90, p.p99].map(|v| Unit::Millis.format(v)),
        None => ["—", "—", "—"].map(str::to_owned),
    }
}

fn latency_text(p: Option<Percentiles>) -> String {
    let [p50, p90, p99] = millis(p);
    format!("p50 {p50}, p90 {p90}, p99 {p99}")
}
