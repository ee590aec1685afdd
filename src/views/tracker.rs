//! The view tracker: delivered byte ranges in, sessions and decisions out, counted views to the
//! writer.
//!
//! A session is one viewer's watching of one video until it goes idle. Each delivery marks the
//! checkpoints whose byte it carried, and when. Checkpoints count together when the span of media
//! time between them took at least the pace's share of wall time to arrive; enough of them make a
//! view, once per viewer per dedupe window and at most `max_per_network` times per network.
//! Time is `tokio::time::Instant`, so tests drive it with paused time instead of sleeping.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use moka::notification::RemovalCause;
use ring::hmac;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::checkpoint::Plan;
use super::viewer::{Identity, NetworkKey, ViewerKey, cookie_key};
use crate::config::ViewRules;
use crate::db::views::{CountedView, SessionRecord};
use crate::range::Delivery;

/// Why a session did or did not count, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Only probes (tiny ranges such as Safari's `bytes=0-1`) were served.
    Probe,
    /// Only HEAD requests were served.
    Head,
    /// Enough checkpoints were delivered, but faster than anyone watches.
    TooFast,
    /// Fewer checkpoints than needed were delivered.
    BelowThreshold,
    /// Counted as a view.
    Counted,
    /// Would have counted, but this viewer's view of this video was counted within the window.
    Deduplicated,
    /// Would have counted, but the viewer's network had its fill of views of this video within
    /// the window.
    NetworkCap,
}

impl Reason {
    /// The reason code.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Probe => "probe",
            Self::Head => "head",
            Self::TooFast => "too_fast",
            Self::BelowThreshold => "below_threshold",
            Self::Counted => "counted",
            Self::Deduplicated => "deduplicated",
            Self::NetworkCap => "network_cap",
        }
    }
}

/// What the writer task persists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A counted view.
    View(CountedView),
    /// A session that ended.
    Session(SessionRecord),
}

/// What kind of response a request gets, as far as views are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// A HEAD: headers only.
    Head,
    /// A body carrying this many file bytes.
    Bytes(u64),
}

type SessionKey = (ViewerKey, String);

/// A session's state; shared by the responses that feed it (players open several at once).
#[derive(Debug)]
struct Session {
    video_id: String,
    viewer: ViewerKey,
    plan: Arc<Plan>,
    started_wall: i64,
    last_seen: Instant,
    /// When each checkpoint was first delivered.
    reached_at: Vec<Option<Instant>>,
    reached: u64,
    /// The largest set of reached checkpoints that kept the pace together.
    paced: u64,
    reason: Reason,
    /// Delivered byte ranges `[start, end)`, merged.
    delivered: Vec<(u64, u64)>,
    ended: bool,
}

/// A summary of one session for the views API.
#[derive(Debug, Clone)]
pub(crate) struct SessionSummary {
    /// The viewer key, hex.
    pub(crate) viewer: String,
    /// Seconds since the epoch.
    pub(crate) started_at: i64,
    /// The decision so far.
    pub(crate) reason: Reason,
    /// Bit i: checkpoint i reached.
    pub(crate) reached: u64,
    /// Media milliseconds delivered.
    pub(crate) covered_ms: u64,
}

/// Counts views from what the range engine delivers.
pub(crate) struct Tracker {
    rules: ViewRules,
    secret: hmac::Key,
    sessions: moka::sync::Cache<SessionKey, Arc<Mutex<Session>>>,
    /// When each (viewer, video) last counted; the window is checked against the stored time.
    counted: moka::sync::Cache<SessionKey, Instant>,
    /// New cookie → the network key it was issued under (see `viewer`).
    aliases: moka::sync::Cache<String, ViewerKey>,
    /// When each (network, video) had its views counted, within the dedupe window.
    networks: moka::sync::Cache<(NetworkKey, String), Arc<Mutex<Vec<Instant>>>>,
    plans: moka::sync::Cache<(String, String), Arc<Plan>>,
    sink: mpsc::Sender<Record>,
}

/// Records waiting for the writer beyond this are dropped (and logged) rather than stalling
/// the delivery path; at a batch every few milliseconds it is never reached in practice.
pub(crate) const SINK_CAPACITY: usize = 65_536;

impl Tracker {
    /// A tracker that sends what it counts to `sink`.
    pub(crate) fn new(rules: ViewRules, secret: &[u8], sink: mpsc::Sender<Record>) -> Arc<Self> {
        let listener_sink = sink.clone();
        let sessions = moka::sync::Cache::builder()
            // moka's own clock frees memory; the idle rule itself is checked on `Instant` below.
            .time_to_idle(rules.session_idle)
            .max_capacity(1_000_000)
            .eviction_listener(move |_key, session: Arc<Mutex<Session>>, cause| {
                if matches!(cause, RemovalCause::Expired | RemovalCause::Size) {
                    end(&session, &listener_sink);
                }
            })
            .build();
        Arc::new(Self {
            counted: moka::sync::Cache::builder()
                .time_to_live(rules.dedupe_window)
                .max_capacity(1_000_000)
                .build(),
            aliases: moka::sync::Cache::builder()
                .time_to_idle(rules.dedupe_window)
                .max_capacity(1_000_000)
                .build(),
            // As for sessions, moka's clock only frees memory; the window is checked on `Instant`.
            networks: moka::sync::Cache::builder()
                .time_to_idle(rules.dedupe_window)
                .max_capacity(1_000_000)
                .build(),
            plans: moka::sync::Cache::builder().max_capacity(10_000).build(),
            secret: hmac::Key::new(hmac::HMAC_SHA256, secret),
            rules,
            sessions,
            sink,
        })
    }

    /// The HMAC key, for identifying viewers.
    pub(crate) fn secret(&self) -> &hmac::Key {
        &self.secret
    }

    /// The viewer key of a request's identity; a network-keyed request's new cookie becomes an
    /// alias of its key, so the same browser keeps one session when its cookie arrives.
    pub(crate) fn viewer(&self, identity: &Identity) -> ViewerKey {
        match identity {
            Identity::Cookie(value) => {
                self.aliases.get(value).unwrap_or_else(|| cookie_key(&self.secret, value))
            }
            Identity::Network { key, new_cookie } => {
                self.aliases.insert(new_cookie.clone(), *key);
                *key
            }
        }
    }

    /// The checkpoint plan of a video (cached by id and content hash).
    pub(crate) fn plan(
        &self,
        video_id: &str,
        hash: &str,
        derive: impl FnOnce(&hmac::Key, u32) -> Plan,
    ) -> Arc<Plan> {
        let key = (video_id.to_owned(), hash.to_owned());
        self.plans.get_with(key, || Arc::new(derive(&self.secret, self.rules.checkpoints)))
    }

    /// The cached checkpoint plan of a video, if it has one for this content.
    pub(crate) fn cached_plan(&self, video_id: &str, hash: &str) -> Option<Arc<Plan>> {
        self.plans.get(&(video_id.to_owned(), hash.to_owned()))
    }

    /// The delivery observer of one response to `viewer`, who is in `network`.
    pub(crate) fn observer(
        self: &Arc<Self>,
        viewer: ViewerKey,
        network: NetworkKey,
        video_id: &str,
        plan: Arc<Plan>,
    ) -> Observer {
        Observer {
            tracker: self.clone(),
            key: (viewer, video_id.to_owned()),
            network,
            plan,
            session: OnceLock::new(),
            tally: None,
        }
    }

    /// Starts (or continues) the session for `key`; returns it when the response carries bytes
    /// worth tracking.
    fn begin(&self, key: &SessionKey, plan: &Arc<Plan>, request: Request) -> Option<Arc<Mutex<Session>>> {
        let now = Instant::now();
        let session = self.session(key, plan, now);
        let mut state = session.lock().expect("session lock");
        state.last_seen = now;
        let untouched = state.delivered.is_empty()
            && matches!(state.reason, Reason::BelowThreshold | Reason::Probe | Reason::Head);
        match request {
            Request::Head => {
                if untouched {
                    state.reason = Reason::Head;
                }
                None
            }
            Request::Bytes(n) if n < self.rules.probe_bytes => {
                if untouched {
                    state.reason = Reason::Probe;
                }
                None
            }
            Request::Bytes(_) => {
                if untouched {
                    state.reason = Reason::BelowThreshold;
                }
                drop(state);
                Some(session)
            }
        }
    }

    /// The live session for `key`, replacing one that has been idle past the limit.
    fn session(&self, key: &SessionKey, plan: &Arc<Plan>, now: Instant) -> Arc<Mutex<Session>> {
        if let Some(existing) = self.sessions.get(key) {
            let idle = now.saturating_duration_since(existing.lock().expect("session lock").last_seen);
            if idle < self.rules.session_idle {
                return existing;
            }
            end(&existing, &self.sink);
            self.sessions.invalidate(key);
        }
        self.sessions.get_with(key.clone(), || {
            Arc::new(Mutex::new(Session {
                video_id: key.1.clone(),
                viewer: key.0,
                plan: plan.clone(),
                started_wall: wall_secs(),
                last_seen: now,
                reached_at: vec![None; plan.checkpoints.len()],
                reached: 0,
                paced: 0,
                reason: Reason::BelowThreshold,
                delivered: Vec::new(),
                ended: false,
            }))
        })
    }

    /// Records that `[offset, offset + len)` of the file went out to the viewer, from `network`.
    /// Returns whether this delivery made the session's view count.
    fn deliver(
        &self,
        key: &SessionKey,
        network: NetworkKey,
        session: &Mutex<Session>,
        offset: u64,
        len: u64,
    ) -> bool {
        let now = Instant::now();
        let mut s = session.lock().expect("session lock");
        s.last_seen = now;
        let plan = s.plan.clone();
        merge(&mut s.delivered, offset, offset + len);
        let mut reached_more = false;
        for (i, checkpoint) in plan.checkpoints.iter().enumerate() {
            if s.reached_at[i].is_none() && (offset..offset + len).contains(&checkpoint.byte) {
                s.reached_at[i] = Some(now);
                s.reached |= 1 << i;
                reached_more = true;
            }
        }
        if reached_more {
            s.paced = self.paced(&plan, &s.reached_at);
        }
        let before = s.reason;
        self.decide(key, network, &mut s, now);
        s.reason == Reason::Counted && before != Reason::Counted
    }

    /// The pace rule (README "View counting"), over the span the reached checkpoints cover: the
    /// largest set of reached checkpoints that each arrived no sooner after the set's earliest
    /// one (in media time) than `pace × (t − t_earliest) − slack`.
    ///
    /// Anchoring on a checkpoint rather than on the session's first byte is what closes
    /// "fetch the last bytes first": a byte late in the file no longer makes every earlier
    /// checkpoint look watched. A player that seeks forward passes from the checkpoint it seeks
    /// to; one that pulls everything at once has no anchor that the rest arrived slowly after.
    fn paced(&self, plan: &Plan, reached_at: &[Option<Instant>]) -> u64 {
        let reached: Vec<(usize, u64, Instant)> = reached_at
            .iter()
            .enumerate()
            .filter_map(|(i, at)| Some((i, plan.checkpoints[i].ms, (*at)?)))
            .collect();
        let mut best = 0u64;
        for &(_, anchor_ms, anchor_at) in &reached {
            let set = reached
                .iter()
                .filter(|&&(_, ms, at)| {
                    // A checkpoint reached before the anchor has waited no time at all.
                    ms >= anchor_ms
                        && self.keeps_pace(at.saturating_duration_since(anchor_at), ms - anchor_ms)
                })
                .fold(0u64, |bits, &(i, ..)| bits | 1 << i);
            if set.count_ones() > best.count_ones() {
                best = set;
            }
        }
        best
    }

    /// Whether `media_ms` of media arriving over `elapsed` of wall time is watching speed.
    fn keeps_pace(&self, elapsed: Duration, media_ms: u64) -> bool {
        elapsed + self.rules.slack >= Duration::from_millis(media_ms).mul_f64(self.rules.pace)
    }

    /// Takes one of the views `network` may have counted for `video_id` within the window;
    /// false when they are all taken. `views.max_per_network = 0` turns the cap off.
    fn admit(&self, network: NetworkKey, video_id: &str, now: Instant) -> bool {
        let max = self.rules.max_per_network as usize;
        if max == 0 {
            return true;
        }
        let counted = self.networks.get_with((network, video_id.to_owned()), Arc::default);
        let mut counted = counted.lock().expect("network lock");
        counted.retain(|&at| now.saturating_duration_since(at) < self.rules.dedupe_window);
        if counted.len() >= max {
            return false;
        }
        counted.push(now);
        true
    }

    fn decide(&self, key: &SessionKey, network: NetworkKey, s: &mut Session, now: Instant) {
        if matches!(s.reason, Reason::Counted | Reason::Deduplicated) {
            return;
        }
        let needed = self.rules.min_checkpoints;
        s.reason = if s.paced.count_ones() >= needed {
            let recent = self
                .counted
                .get(key)
                .is_some_and(|at| now.saturating_duration_since(at) < self.rules.dedupe_window);
            if recent {
                Reason::Deduplicated
            } else if !self.admit(network, &s.video_id, now) {
                // Not final: a later delivery counts once the network's window has room again.
                Reason::NetworkCap
            } else {
                self.counted.insert(key.clone(), now);
                let view = CountedView {
                    video_id: s.video_id.clone(),
                    viewer: s.viewer.hex(),
                    counted_at: wall_secs(),
                };
                send(&self.sink, Record::View(view));
                Reason::Counted
            }
        } else if s.reached.count_ones() >= needed {
            Reason::TooFast
        } else {
            Reason::BelowThreshold
        };
    }

    /// Ends every live session (graceful shutdown), so each is recorded once.
    pub(crate) fn flush(&self) {
        for (_, session) in self.sessions.iter() {
            end(&session, &self.sink);
        }
        self.sessions.invalidate_all();
    }

    /// Checkpoints per video (`views.checkpoints`).
    pub(crate) fn checkpoints(&self) -> u32 {
        self.rules.checkpoints
    }

    /// The live sessions of a video.
    pub(crate) fn live(&self, video_id: &str) -> Vec<SessionSummary> {
        self.sessions
            .iter()
            .filter(|(key, _)| key.1 == video_id)
            .map(|(_, session)| summary(&session.lock().expect("session lock")))
            .collect()
    }
}

/// Reports one response's deliveries to its session; the range engine calls it.
pub(crate) struct Observer {
    tracker: Arc<Tracker>,
    key: SessionKey,
    network: NetworkKey,
    plan: Arc<Plan>,
    session: OnceLock<Option<Arc<Mutex<Session>>>>,
    tally: Option<ViewTally>,
}

impl Observer {
    /// Also counts the views this response makes count into `tally` (for request statistics).
    pub(crate) fn with_tally(self, tally: ViewTally) -> Self {
        Self { tally: Some(tally), ..self }
    }
}

/// The views one response made count, shared between its delivery observer and the access log
/// (which finds it among the response's extensions).
#[derive(Debug, Clone, Default)]
pub(crate) struct ViewTally(Arc<AtomicU32>);

impl ViewTally {
    /// Views counted so far.
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Delivery for Observer {
    fn begin(&self, head: bool, file_bytes: u64) -> bool {
        let request = if head { Request::Head } else { Request::Bytes(file_bytes) };
        self.session.get_or_init(|| self.tracker.begin(&self.key, &self.plan, request)).is_some()
    }

    fn delivered(&self, offset: u64, len: u64) {
        if let Some(Some(session)) = self.session.get()
            && self.tracker.deliver(&self.key, self.network, session, offset, len)
            && let Some(tally) = &self.tally
        {
            tally.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Records a session's end once.
fn end(session: &Mutex<Session>, sink: &mpsc::Sender<Record>) {
    let mut s = session.lock().expect("session lock");
    if s.ended {
        return;
    }
    s.ended = true;
    let summary = summary(&s);
    let record = SessionRecord {
        video_id: s.video_id.clone(),
        viewer: summary.viewer,
        started_at: summary.started_at,
        ended_at: wall_secs().max(summary.started_at),
        reason: summary.reason.as_str().to_owned(),
        reached: i64::try_from(summary.reached).unwrap_or(0),
        covered_ms: i64::try_from(summary.covered_ms).unwrap_or(i64::MAX),
    };
    send(sink, Record::Session(record));
}

fn summary(s: &Session) -> SessionSummary {
    let covered_ms =
        s.delivered.iter().map(|&(a, b)| s.plan.time_at(b).saturating_sub(s.plan.time_at(a))).sum();
    SessionSummary {
        viewer: s.viewer.hex(),
        started_at: s.started_wall,
        reason: s.reason,
        reached: s.reached,
        covered_ms,
    }
}

fn send(sink: &mpsc::Sender<Record>, record: Record) {
    if let Err(error) = sink.try_send(record) {
        tracing::error!(%error, "view writer is behind; a view record was dropped");
    }
}

/// Adds `[start, end)` to sorted, disjoint ranges, merging what touches.
fn merge(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    let at = ranges.partition_point(|&(_, e)| e < start);
    let mut merged = (start, end);
    let mut until = at;
    while until < ranges.len() && ranges[until].0 <= merged.1 {
        merged = (merged.0.min(ranges[until].0), merged.1.max(ranges[until].1));
        until += 1;
    }
    ranges.splice(at..until, [merged]);
}

fn wall_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::container::{IndexPoint, TimeIndex};

    const SECOND: u64 = 100_000;

    /// A video of `seconds` at 100 kB per second, with an index point every second.
    fn plan(tracker: &Tracker, seconds: u64) -> Arc<Plan> {
        let index =
            TimeIndex::new((0..seconds).map(|s| IndexPoint { byte: s * SECOND, ms: s * 1000 }).collect());
        tracker.plan(&format!("video-{seconds}"), "hash", |secret, k| {
            Plan::derive(secret, "video", k, Some(seconds * 1000), seconds * SECOND, index)
        })
    }

    fn tracker() -> (Arc<Tracker>, mpsc::Receiver<Record>) {
        let (sink, records) = mpsc::channel(1024);
        (Tracker::new(ViewRules::default(), b"secret", sink), records)
    }

    fn viewer(n: u8) -> ViewerKey {
        ViewerKey::derive(&hmac::Key::new(hmac::HMAC_SHA256, b"v"), "test", &[n])
    }

    /// The network every test viewer is in unless a test says otherwise.
    fn home() -> NetworkKey {
        network("192.0.2.1:1000")
    }

    fn network(addr: &str) -> NetworkKey {
        NetworkKey::of(&hmac::Key::new(hmac::HMAC_SHA256, b"v"), Some(addr.parse().unwrap()))
    }

    fn views(records: &mut mpsc::Receiver<Record>) -> usize {
        std::iter::from_fn(|| records.try_recv().ok()).filter(|r| matches!(r, Record::View(_))).count()
    }

    /// One response for `[start, end)` delivered in 256 KiB chunks.
    fn respond(tracker: &Arc<Tracker>, who: ViewerKey, plan: &Arc<Plan>, start: u64, end: u64) -> Reason {
        respond_in(tracker, home(), who, plan, start, end)
    }

    /// [`respond`] to a viewer in `network`.
    fn respond_in(
        tracker: &Arc<Tracker>,
        network: NetworkKey,
        who: ViewerKey,
        plan: &Arc<Plan>,
        start: u64,
        end: u64,
    ) -> Reason {
        let observer = tracker.observer(who, network, "video", plan.clone());
        if observer.begin(false, end - start) {
            let mut at = start;
            while at < end {
                let n = (end - at).min(256 * 1024);
                observer.delivered(at, n);
                at += n;
            }
        }
        reason(tracker, who)
    }

    fn reason(tracker: &Tracker, who: ViewerKey) -> Reason {
        tracker.live("video").into_iter().find(|s| s.viewer == who.hex()).map(|s| s.reason).unwrap()
    }

    /// A player that fetches 10-second ranges in time with playback.
    async fn watch(tracker: &Arc<Tracker>, who: ViewerKey, plan: &Arc<Plan>, seconds: u64) -> Reason {
        watch_from(tracker, home(), who, plan, 0, seconds).await
    }

    /// [`watch`] from media second `from` to `to`, in `network`.
    async fn watch_from(
        tracker: &Arc<Tracker>,
        network: NetworkKey,
        who: ViewerKey,
        plan: &Arc<Plan>,
        from: u64,
        to: u64,
    ) -> Reason {
        let mut last = Reason::BelowThreshold;
        for chunk in (from..to).step_by(10) {
            last = respond_in(tracker, network, who, plan, chunk * SECOND, ((chunk + 10).min(to)) * SECOND);
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        last
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_sequential_player_counts_once() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 600);
        assert_eq!(watch(&tracker, viewer(1), &plan, 600).await, Reason::Counted);
        assert_eq!(views(&mut records), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_downloader_at_fifty_times_speed_is_too_fast() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 3600);
        // An hour of video in 72 s: 50 seconds of media per wall second.
        for second in (0..3600).step_by(50) {
            respond(&tracker, viewer(1), &plan, second * SECOND, (second + 50) * SECOND);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(reason(&tracker, viewer(1)), Reason::TooFast);
        assert_eq!(views(&mut records), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_scrubber_seeking_through_everything_is_not_a_view() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 3600);
        // The worst scrubber: one that lands on every checkpoint, all within three seconds.
        for checkpoint in &plan.checkpoints {
            respond(&tracker, viewer(1), &plan, checkpoint.byte, checkpoint.byte + SECOND / 10);
            tokio::time::advance(Duration::from_millis(300)).await;
        }
        let session = &tracker.live("video")[0];
        assert_eq!(session.reached.count_ones(), 10);
        assert_eq!(session.reason, Reason::TooFast);
        assert_eq!(views(&mut records), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn fetching_the_last_bytes_first_does_not_pace_the_rest() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 3600);
        let end = 3600 * SECOND;
        // The script: the last 4 KiB, a pause, then the whole file at once.
        respond(&tracker, viewer(1), &plan, end - 4096, end);
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(respond(&tracker, viewer(1), &plan, 0, end), Reason::TooFast);
        assert_eq!(tracker.live("video")[0].reached.count_ones(), 10);
        assert_eq!(views(&mut records), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_player_seeking_to_the_middle_then_watching_counts() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 3600);
        // The first 20 s buffer, then a seek to 30:00 and 20 minutes watched from there.
        respond(&tracker, viewer(1), &plan, 0, 20 * SECOND);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(watch_from(&tracker, home(), viewer(1), &plan, 1800, 3000).await, Reason::Counted);
        assert_eq!(views(&mut records), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_player_seeking_back_and_forth_while_watching_counts() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 3600);
        // Five minutes from 40:00 (at most two checkpoints), a look at the end, then back to the
        // start for twenty minutes: three slices, so three checkpoints, whatever the secret.
        watch_from(&tracker, home(), viewer(1), &plan, 2400, 2700).await;
        respond(&tracker, viewer(1), &plan, 3590 * SECOND, 3600 * SECOND);
        let reason = watch_from(&tracker, home(), viewer(1), &plan, 0, 1200).await;
        assert_eq!(reason, Reason::Counted);
        assert_eq!(views(&mut records), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn one_network_counts_at_most_max_per_network_views_per_window() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 120);
        let max = ViewRules::default().max_per_network;
        let mut reasons = Vec::new();
        for n in 0..20 {
            // One /24: a script rotating its address's last octet, its User-Agent or its cookie.
            let address = network(&format!("198.51.100.{n}:4000"));
            reasons.push(watch_from(&tracker, address, viewer(n), &plan, 0, 120).await);
        }
        let counted = reasons.iter().filter(|&&r| r == Reason::Counted).count();
        assert_eq!(counted, max as usize, "{reasons:?}");
        assert!(reasons[max as usize..].iter().all(|&r| r == Reason::NetworkCap), "{reasons:?}");
        assert_eq!(views(&mut records), max as usize);

        let elsewhere = watch_from(&tracker, network("203.0.113.9:1"), viewer(100), &plan, 0, 120).await;
        assert_eq!(elsewhere, Reason::Counted, "another network is not capped");
        tokio::time::advance(Duration::from_secs(3600)).await;
        let later = watch_from(&tracker, network("198.51.100.77:1"), viewer(101), &plan, 0, 120).await;
        assert_eq!(later, Reason::Counted, "the window has moved on");
        assert_eq!(views(&mut records), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_player_buffering_a_short_video_ahead_still_counts() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 20);
        // Chrome's `bytes=0-` pulls a 20 s clip at once; slack covers it.
        assert_eq!(respond(&tracker, viewer(1), &plan, 0, 20 * SECOND), Reason::Counted);
        assert_eq!(views(&mut records), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_viewer_twice_in_the_window_counts_once_and_again_after_it() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 300);
        assert_eq!(watch(&tracker, viewer(1), &plan, 300).await, Reason::Counted);
        tokio::time::advance(Duration::from_secs(31 * 60)).await;
        assert_eq!(watch(&tracker, viewer(1), &plan, 300).await, Reason::Deduplicated);
        assert_eq!(views(&mut records), 1);
        tokio::time::advance(Duration::from_secs(31 * 60)).await;
        assert_eq!(watch(&tracker, viewer(1), &plan, 300).await, Reason::Counted);
        assert_eq!(views(&mut records), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn two_viewers_are_two_views() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 120);
        watch(&tracker, viewer(1), &plan, 120).await;
        watch(&tracker, viewer(2), &plan, 120).await;
        assert_eq!(views(&mut records), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn probes_and_head_requests_reach_nothing() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 20);
        let observer = tracker.observer(viewer(1), home(), "video", plan.clone());
        assert!(!observer.begin(true, 20 * SECOND));
        assert_eq!(reason(&tracker, viewer(1)), Reason::Head);
        let probe = tracker.observer(viewer(1), home(), "video", plan.clone());
        assert!(!probe.begin(false, 2));
        probe.delivered(0, 2);
        assert_eq!(reason(&tracker, viewer(1)), Reason::Probe);
        assert_eq!(tracker.live("video")[0].reached, 0);
        assert_eq!(views(&mut records), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_aborted_response_reaches_only_what_it_delivered() {
        let (tracker, _records) = tracker();
        let plan = plan(&tracker, 600);
        let observer = tracker.observer(viewer(1), home(), "video", plan.clone());
        assert!(observer.begin(false, 600 * SECOND));
        // The player closed the tab after 8 kB of a whole-file response.
        observer.delivered(0, 8 * 1024);
        let session = &tracker.live("video")[0];
        assert_eq!(session.reached, 0, "no checkpoint sits in the first 8 kB");
        assert_eq!(session.reason, Reason::BelowThreshold);
    }

    #[tokio::test(start_paused = true)]
    async fn a_video_without_an_index_maps_time_to_bytes() {
        let (tracker, mut records) = tracker();
        let plan = tracker.plan("noindex", "h", |secret, k| {
            Plan::derive(secret, "noindex", k, Some(100_000), 100 * SECOND, TimeIndex::default())
        });
        assert_eq!(watch(&tracker, viewer(1), &plan, 100).await, Reason::Counted);
        assert_eq!(views(&mut records), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_five_second_video_counts_when_watched() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 5);
        assert_eq!(respond(&tracker, viewer(1), &plan, 0, 5 * SECOND), Reason::Counted);
        assert_eq!(views(&mut records), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn ended_sessions_are_recorded_with_their_coverage() {
        let (tracker, mut records) = tracker();
        let plan = plan(&tracker, 100);
        respond(&tracker, viewer(1), &plan, 0, 15 * SECOND);
        tracker.flush();
        let ended: Vec<SessionRecord> = std::iter::from_fn(|| records.try_recv().ok())
            .filter_map(|r| match r {
                Record::Session(s) => Some(s),
                Record::View(_) => None,
            })
            .collect();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].covered_ms, 15_000);
        assert_eq!(ended[0].reason, "below_threshold");
        assert!(
            (1..=2).contains(&ended[0].reached.count_ones()),
            "the first 15% holds checkpoint 0, maybe 1"
        );
    }

    #[test]
    fn delivered_ranges_merge() {
        let mut ranges = Vec::new();
        for (a, b) in [(10, 20), (30, 40), (15, 32), (50, 60), (0, 5)] {
            merge(&mut ranges, a, b);
        }
        assert_eq!(ranges, [(0, 5), (10, 40), (50, 60)]);
    }
}
