//! `GET /live`: server-sent events that keep an open page current without reloading.
//!
//! It listens to the monitors' broadcast of durable changes (`monitor::changes`),
//! gathers what arrives within [`GATHER`] into one `change` event (the monitors that
//! changed, their states, and the counts by state), and sends `reload` instead when it
//! fell behind or too much changed at once. The page then refetches the part it shows
//! (`app.js`). The stream ends when the session does (signed out, expired) and when
//! the server drains, so a shutdown never waits for it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::http::{AppState, Phase};
use crate::monitor::changes::MonitorChange;

use super::Web;
use super::session::Viewer;

/// How long changes are gathered into one event.
const GATHER: Duration = Duration::from_millis(250);

/// How often the stream checks its session and the server's phase.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// More changes than this in one event: the page reloads its part instead.
const MAX_LISTED: usize = 200;

struct Live {
    state: AppState,
    web: Arc<Web>,
    viewer: Viewer,
    changes: Receiver<MonitorChange>,
    greeted: bool,
}

enum Next {
    Changes(Vec<MonitorChange>),
    FellBehind,
    End,
}

impl Live {
    async fn next_event(&mut self) -> Option<Event> {
        if !self.greeted {
            self.greeted = true;
            return Some(self.event("hello", json!({})).await);
        }
        match self.wait().await {
            Next::End => None,
            Next::FellBehind => Some(self.event("reload", json!({})).await),
            Next::Changes(changes) if changes.len() > MAX_LISTED => {
                Some(self.event("reload", json!({})).await)
            }
            Next::Changes(changes) => {
                let listed: Vec<_> = changes
                    .iter()
                    .map(|change| {
                        json!({
                            "id": change.id.to_string(),
                            "status": change.status.map(|status| status.as_str()),
                        })
                    })
                    .collect();
                Some(self.event("change", json!({ "changes": listed })).await)
            }
        }
    }

    /// The next changes, gathered for [`GATHER`] after the first.
    async fn wait(&mut self) -> Next {
        if !self.still_wanted() {
            return Next::End;
        }
        let first = loop {
            tokio::select! {
                heard = self.changes.recv() => match heard {
                    Ok(change) => break change,
                    Err(RecvError::Lagged(_)) => return Next::FellBehind,
                    Err(RecvError::Closed) => return Next::End,
                },
                () = tokio::time::sleep(CHECK_EVERY) => {
                    if !self.still_wanted() {
                        return Next::End;
                    }
                }
            }
        };
        tokio::time::sleep(GATHER).await;
        let mut changes = vec![first];
        loop {
            match self.changes.try_recv() {
                Ok(change) => changes.push(change),
                Err(TryRecvError::Lagged(_)) => return Next::FellBehind,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        Next::Changes(changes)
    }

    fn still_wanted(&self) -> bool {
        self.state.phase() != Phase::Draining
            && self
                .web
                .sessions
                .is_open(&self.state, &self.viewer, self.state.clock.now())
    }

    async fn event(&self, name: &str, mut data: serde_json::Value) -> Event {
        let counts = self.web.counts().await;
        if let Some(fields) = data.as_object_mut() {
            fields.insert("counts".to_owned(), json!(counts));
        }
        Event::default().event(name).data(data.to_string())
    }
}

/// `GET /live`.
pub async fn events(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let live = Live {
        changes: state.registry.changes().subscribe(),
        state,
        web,
        viewer,
        greeted: false,
    };
    let stream = stream::unfold(live, |mut live| async move {
        let event = live.next_event().await?;
        Some((Ok(event), live))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
