//! The window policy: whom the window calls, which calls it takes, and what its screen says.
//!
//! Pure and deterministic: no IO, no clock, no randomness. The phone's IO loop feeds
//! [`Policy::handle`] one [`Input`] at a time with the monotonic time in milliseconds and the
//! local minute of the day, and executes the [`Action`]s it returns, in order. It sends
//! [`Input::Tick`] at [`Policy::next_deadline`] (monotonic milliseconds) and at
//! [`Policy::next_hours_change`] (local minute of the day); nothing polls.
//!
//! # Rules
//!
//! - The window is *open* when its curtain is open and the local minute is within its open
//!   hours. While closed it has no call (closing ends the call), never dials, and refuses every
//!   INVITE with 603 Decline. Opening again (curtain opened, open hours begin) forgets the
//!   backoff and dials at once.
//! - Presence (who answers our SIP OPTIONS) arrives as [`Input::Presence`]. Only members other
//!   than this window count.
//! - Open, without a call and past the backoff: dial the partner if it is online, else the
//!   first online member after the last one we called or talked to, in name order, wrapping
//!   around. The position moves with every attempt, so a member that is online but does not
//!   answer cannot hold the window: the next attempt goes to the next member.
//! - A member that refused our INVITE with 603 (its curtain is closed or it is outside its
//!   hours) is skipped by the automatic choice and by "next" for [`DECLINE_HOLD_MS`], unless it
//!   calls us first: we talk to someone else instead of knocking on a closed curtain.
//! - Incoming INVITE: closed → 603; from a name not in the roster (a roster change raced the
//!   access policy) → 403; no call (also during backoff) → answer; we are dialing that same
//!   member (glare) → the window with the lexicographically smaller name keeps its outgoing
//!   call and refuses the INVITE with 486, the other cancels its outgoing call and answers;
//!   any other call → 486 Busy Here.
//! - A call that ends without our asking (BYE, RTP timeout, refused, no answer, error) and a
//!   maintainer's `hangup`: redial after a backoff of 2 s, doubling to 60 s
//!   ([`backoff_delay_ms`]); a call that stayed up [`STABLE_AFTER_MS`] starts the count again.
//!   A BYE from the peer counts like any other end: a window reopens.
//! - "Next" (short press): hang up and dial at once the next online member after the current
//!   peer, in name order, wrapping around, skipping offline members, ourselves and declining
//!   members; the call goes on when there is no one else. Without a call: dial at once the
//!   next one after the last member, which may be that member again. No backoff either way.
//! - "Curtain" (long press, or the control socket): close or open the curtain.
//! - `call NAME` (maintainer): hang up and dial NAME at once, online or not, partner or not,
//!   when NAME is another member and the window is open; nothing when already with NAME.
//! - A roster, partner or open-hours reload: a call with a member that left is hung up; the
//!   new hours apply at once.
//! - A member that goes offline during a call changes nothing: the call ends by RTP timeout.
//!
//! Why 603 and not 486 when closed: 486 says "busy, try again soon", which is what a window
//! in a call means; a closed window is a deliberate, lasting "not now", which is 603 Decline.
//! The caller can tell them apart: it backs off from a busy member as from any failure, but
//! skips a declining one for a while and opens a window to someone else meanwhile.
//!
//! # IO contract
//!
//! - Actions are executed in the order given; an end ([`Action::Cancel`],
//!   [`Action::HangUp`]) always comes before the dial or answer that replaces it.
//! - The policy names every call with a [`CallId`] ([`Action::Dial`], [`Action::Answer`]).
//!   For each call the IO reports [`Input::Established`] once it is up and [`Input::Ended`]
//!   once it ended on its own. After the policy ended a call itself it forgets it: a late
//!   `Ended` for it is ignored, and a late `Established` (a 200 OK that crossed our CANCEL) is
//!   answered with [`Action::HangUp`].
//! - The call layer's `ewindow_protocol::stats::EndReason` maps to [`EndReason`] as:
//!   `RemoteBye`, `Cancel` → [`EndReason::Bye`]; `RtpTimeout` → [`EndReason::RtpTimeout`];
//!   `Rejected` → [`EndReason::Refused`] with the status; `NoCommonCodec` → `Refused(488)`;
//!   `Timeout` → [`EndReason::NoAnswer`]; `LocalBye`, `MediaError`, `TransportError` →
//!   [`EndReason::Error`].
//!
//! # Invariants
//!
//! Checked after every step of randomized input sequences, and (glare) between simulated
//! windows that exchange SIP messages with random delays:
//! - at most one call, outgoing or established, at a time;
//! - no [`Action::Dial`] while the curtain is closed or outside the open hours, and no call
//!   survives closing;
//! - every [`Input::IncomingInvite`] gets exactly one [`Action::Answer`] or
//!   [`Action::Refuse`], in the answer to that input;
//! - a backoff is never below [`BACKOFF_MIN_MS`] nor above [`BACKOFF_MAX_MS`];
//! - glare is resolved the same way on both sides: exactly one call survives;
//! - [`Policy::next_deadline`] is `None` or later than the last input: the IO loop never spins.

use std::collections::{BTreeMap, BTreeSet};

use ewindow_protocol::window::OpenHours;

/// The first delay before redialing after a call ended.
pub const BACKOFF_MIN_MS: u64 = 2_000;
/// The longest delay before redialing.
pub const BACKOFF_MAX_MS: u64 = 60_000;
/// A call up at least this long resets the backoff.
pub const STABLE_AFTER_MS: u64 = 60_000;
/// How long a member that refused our INVITE with 603 is skipped when choosing whom to call.
pub const DECLINE_HOLD_MS: u64 = 300_000;
/// 486 Busy Here: the answer to an INVITE while in a call, and to the loser of glare.
pub const BUSY_HERE: u16 = 486;
/// 603 Decline: the answer to an INVITE while the window is closed.
pub const DECLINE: u16 = 603;
/// 403 Forbidden: the answer to an INVITE from a name that is not in the roster.
pub const FORBIDDEN: u16 = 403;

/// The delay before the `n`th redial in a row (`n >= 1`): 2 s, 4 s, 8 s … capped at 60 s.
pub fn backoff_delay_ms(n: u32) -> u64 {
    let shift = n.saturating_sub(1).min(32);
    BACKOFF_MIN_MS
        .saturating_mul(1u64 << shift)
        .clamp(BACKOFF_MIN_MS, BACKOFF_MAX_MS)
}

/// A call, named by the policy when it dials or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// What the window file says about calling: the roster, the partner, the open hours.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Member names (this window's own name may be among them; it is never called).
    pub members: Vec<String>,
    /// The member this window calls first, if any.
    pub partner: Option<String>,
    /// When the window is open for calls.
    pub open_hours: OpenHours,
}

/// Why a call ended on its own (see the module documentation for the call layer's mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The peer hung up (BYE), or the caller cancelled before we were up.
    Bye,
    /// No media arrived for the call layer's RTP timeout.
    RtpTimeout,
    /// The peer refused our INVITE with this final status (486, 603, 488 …).
    Refused(u16),
    /// The peer did not answer in time.
    NoAnswer,
    /// The network, the media or the call layer failed.
    Error,
}

/// What happened, as the IO loop tells the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Nothing happened; the time did (a deadline or an open-hours change was reached).
    Tick,
    /// Presence results (member name, answers OPTIONS); members not listed keep their state.
    Presence(Vec<(String, bool)>),
    /// The window file was (re)loaded.
    Settings(Settings),
    /// A member's INVITE passed the access policy; `invite` is the IO's name for it.
    IncomingInvite {
        /// The IO's name for this INVITE, echoed in the answer or refusal.
        invite: u64,
        /// The caller's member name.
        from: String,
    },
    /// The call is up (200 OK and ACK).
    Established(CallId),
    /// The call ended without the policy asking.
    Ended {
        /// Which call.
        call: CallId,
        /// Why.
        reason: EndReason,
    },
    /// Short press: move on to the next online member.
    Next,
    /// Long press: close the curtain if open, open it if closed.
    CurtainToggle,
    /// Set the curtain (control socket, or restoring the state at start).
    Curtain {
        /// Whether the curtain is closed.
        closed: bool,
    },
    /// The maintainer's `call NAME`.
    CallNow(String),
    /// The maintainer's `hangup`.
    Hangup,
}

/// What the IO loop must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an INVITE to a member.
    Dial {
        /// The policy's name for the new call.
        call: CallId,
        /// The member to call.
        to: String,
    },
    /// Accept an incoming INVITE (180, then 200 OK).
    Answer {
        /// The IO's name for the INVITE.
        invite: u64,
        /// The policy's name for the new call.
        call: CallId,
    },
    /// Refuse an incoming INVITE with a final status.
    Refuse {
        /// The IO's name for the INVITE.
        invite: u64,
        /// [`BUSY_HERE`], [`DECLINE`] or [`FORBIDDEN`].
        status: u16,
    },
    /// Cancel our outgoing INVITE that is not answered yet.
    Cancel(CallId),
    /// End a call that was answered or established (BYE).
    HangUp(CallId),
}

/// What the screen says: the protocol's window state (`ewindow_protocol::phone`), which
/// the phone publishes and the console shows as it is.
pub use ewindow_protocol::phone::WindowState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Our INVITE is out.
    Dialing,
    /// We answered an INVITE; the ACK has not come.
    Answering,
    /// Up since this time.
    Up { since_ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    id: CallId,
    peer: String,
    phase: Phase,
}

/// The window policy of one window. See the module documentation for its rules.
#[derive(Debug, Clone)]
pub struct Policy {
    own: String,
    /// Sorted, without duplicates, without `own`.
    members: Vec<String>,
    partner: Option<String>,
    hours: OpenHours,
    online: BTreeSet<String>,
    presence_known: bool,
    curtain_closed: bool,
    call: Option<Call>,
    last_id: u64,
    /// Ends in a row since the last stable call.
    failures: u32,
    /// No automatic dial before this time.
    retry_at: Option<u64>,
    /// The member we last called or talked to: where the name order continues.
    last_peer: Option<String>,
    /// Members that declined us, until when.
    declined: BTreeMap<String, u64>,
    now_ms: u64,
    minute: u16,
}

impl Policy {
    /// A policy for the window `own_name`, curtain open, no call, nobody known online.
    pub fn new(own_name: impl Into<String>, settings: Settings) -> Policy {
        let mut policy = Policy {
            own: own_name.into(),
            members: Vec::new(),
            partner: None,
            hours: OpenHours::Always,
            online: BTreeSet::new(),
            presence_known: false,
            curtain_closed: false,
            call: None,
            last_id: 0,
            failures: 0,
            retry_at: None,
            last_peer: None,
            declined: BTreeMap::new(),
            now_ms: 0,
            minute: 0,
        };
        policy.apply_settings(settings, &mut Vec::new());
        policy
    }

    /// Takes one input at monotonic time `now_ms` and local `minute_of_day` (0..1440, taken
    /// modulo 1440) and returns what to do, in order. Time never goes back: a `now_ms` below
    /// an earlier one counts as the earlier one.
    pub fn handle(&mut self, input: Input, now_ms: u64, minute_of_day: u16) -> Vec<Action> {
        let was_open = self.is_open();
        self.now_ms = self.now_ms.max(now_ms);
        self.minute = minute_of_day % 1440;
        let mut out = Vec::new();
        match input {
            Input::Tick => {}
            Input::Presence(results) => {
                self.presence_known = true;
                for (name, online) in results {
                    if !self.is_member(&name) {
                        continue;
                    }
                    if online {
                        self.online.insert(name);
                    } else {
                        self.online.remove(&name);
                    }
                }
            }
            Input::Settings(settings) => self.apply_settings(settings, &mut out),
            Input::IncomingInvite { invite, from } => self.incoming(invite, from, &mut out),
            Input::Established(id) => match &mut self.call {
                Some(call) if call.id == id => {
                    if !matches!(call.phase, Phase::Up { .. }) {
                        call.phase = Phase::Up {
                            since_ms: self.now_ms,
                        };
                    }
                }
                // A call we ended already (a 200 OK that crossed our CANCEL): end it too.
                _ => out.push(Action::HangUp(id)),
            },
            Input::Ended { call, reason } => {
                if let Some(c) = self.call.take_if(|c| c.id == call) {
                    if c.phase == Phase::Dialing && reason == EndReason::Refused(DECLINE) {
                        self.declined
                            .insert(c.peer.clone(), self.now_ms.saturating_add(DECLINE_HOLD_MS));
                    }
                    self.back_off(&c);
                }
            }
            Input::Next => self.next(&mut out),
            Input::CurtainToggle => self.curtain_closed = !self.curtain_closed,
            Input::Curtain { closed } => self.curtain_closed = closed,
            Input::CallNow(name) => {
                let already = self.call.as_ref().is_some_and(|c| c.peer == name);
                if self.is_open() && self.is_member(&name) && !already {
                    self.end_call(&mut out);
                    self.dial(name, &mut out);
                }
            }
            Input::Hangup => {
                if let Some(c) = self.call.clone() {
                    self.end_call(&mut out);
                    self.back_off(&c);
                }
            }
        }
        if !self.is_open() {
            self.end_call(&mut out);
            self.retry_at = None;
        } else if !was_open {
            self.failures = 0;
            self.retry_at = None;
        }
        self.dial_if_due(&mut out);
        out
    }

    /// What the screen says at local `minute_of_day`.
    pub fn screen(&self, minute_of_day: u16) -> WindowState {
        if self.curtain_closed {
            return WindowState::Curtain;
        }
        if !self.hours.is_open(minute_of_day) {
            let at = next_change(&self.hours, minute_of_day).unwrap_or(0);
            return WindowState::ClosedUntil {
                hh: (at / 60) as u8,
                mm: (at % 60) as u8,
            };
        }
        match &self.call {
            Some(Call {
                peer,
                phase: Phase::Up { .. },
                ..
            }) => WindowState::Open { with: peer.clone() },
            Some(Call { peer, .. }) => WindowState::Connecting { to: peer.clone() },
            None if !self.presence_known => WindowState::SettingUp,
            None => WindowState::Waiting,
        }
    }

    /// When (monotonic milliseconds) the IO loop should send [`Input::Tick`]: the end of a
    /// backoff or of a member's decline hold, only while they can lead to a dial. Always
    /// later than the last input's time.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.is_open() || self.call.is_some() {
            return None;
        }
        let holds = self
            .declined
            .iter()
            .filter(|(name, _)| self.online.contains(*name))
            .map(|(_, until)| *until);
        self.retry_at
            .into_iter()
            .chain(holds)
            .filter(|t| *t > self.now_ms)
            .min()
    }

    /// The next local minute of the day, after `minute_of_day`, at which the open hours open
    /// or close; `None` when they never change. The IO loop sends [`Input::Tick`] then.
    pub fn next_hours_change(&self, minute_of_day: u16) -> Option<u16> {
        next_change(&self.hours, minute_of_day)
    }

    /// Whether the curtain is closed (for the IO loop to keep across restarts).
    pub fn curtain_closed(&self) -> bool {
        self.curtain_closed
    }

    /// The current call: its id, the member, and whether it is up.
    pub fn call(&self) -> Option<(CallId, &str, bool)> {
        self.call.as_ref().map(|c| {
            let up = matches!(c.phase, Phase::Up { .. });
            (c.id, c.peer.as_str(), up)
        })
    }

    fn is_open(&self) -> bool {
        !self.curtain_closed && self.hours.is_open(self.minute)
    }

    fn is_member(&self, name: &str) -> bool {
        self.members
            .binary_search_by(|m| m.as_str().cmp(name))
            .is_ok()
    }

    /// Online, a member, not ourselves, not declining us.
    fn available(&self, name: &str) -> bool {
        self.is_member(name)
            && self.online.contains(name)
            && self
                .declined
                .get(name)
                .is_none_or(|until| *until <= self.now_ms)
    }

    /// The first available member after `after` in name order, wrapping around, never
    /// `exclude`.
    fn member_after(&self, after: Option<&str>, exclude: Option<&str>) -> Option<String> {
        let mut candidates = self
            .members
            .iter()
            .filter(|m| self.available(m) && Some(m.as_str()) != exclude);
        let first = candidates.clone().next();
        candidates
            .find(|m| after.is_none_or(|a| m.as_str() > a))
            .or(first)
            .cloned()
    }

    fn apply_settings(&mut self, settings: Settings, out: &mut Vec<Action>) {
        let mut members = settings.members;
        members.retain(|m| *m != self.own);
        members.sort();
        members.dedup();
        self.members = members;
        self.partner = settings.partner;
        self.hours = settings.open_hours;
        let members = &self.members;
        self.online.retain(|m| members.binary_search(m).is_ok());
        self.declined
            .retain(|m, _| members.binary_search(m).is_ok());
        if let Some(c) = &self.call {
            if !self.is_member(&c.peer) {
                self.end_call(out);
            }
        }
    }

    fn incoming(&mut self, invite: u64, from: String, out: &mut Vec<Action>) {
        if !self.is_open() {
            out.push(Action::Refuse {
                invite,
                status: DECLINE,
            });
            return;
        }
        if !self.is_member(&from) {
            out.push(Action::Refuse {
                invite,
                status: FORBIDDEN,
            });
            return;
        }
        match &self.call {
            None => {}
            Some(c) if c.phase == Phase::Dialing && c.peer == from => {
                // Glare: the smaller name keeps its outgoing call.
                if self.own < from {
                    out.push(Action::Refuse {
                        invite,
                        status: BUSY_HERE,
                    });
                    return;
                }
                self.end_call(out);
            }
            // A new INVITE (outside the dialog) from the member we are in a call with: that
            // member lost the call (its phone restarted, its link came back after our RTP
            // timeout has not yet fired): ours is dead too. The new call replaces it at once
            // instead of a 486 until our RTP timeout.
            Some(c) if c.phase != Phase::Dialing && c.peer == from => self.end_call(out),
            Some(_) => {
                out.push(Action::Refuse {
                    invite,
                    status: BUSY_HERE,
                });
                return;
            }
        }
        let id = self.new_id();
        self.declined.remove(&from);
        self.last_peer = Some(from.clone());
        self.retry_at = None;
        self.call = Some(Call {
            id,
            peer: from,
            phase: Phase::Answering,
        });
        out.push(Action::Answer { invite, call: id });
    }

    fn next(&mut self, out: &mut Vec<Action>) {
        if !self.is_open() {
            return;
        }
        let current = self.call.as_ref().map(|c| c.peer.clone());
        let after = current.as_deref().or(self.last_peer.as_deref());
        if let Some(to) = self.member_after(after, current.as_deref()) {
            self.end_call(out);
            self.dial(to, out);
        }
    }

    fn dial_if_due(&mut self, out: &mut Vec<Action>) {
        if !self.is_open() || self.call.is_some() {
            return;
        }
        if self.retry_at.is_some_and(|t| self.now_ms < t) {
            return;
        }
        let partner = self.partner.clone().filter(|p| self.available(p));
        let target = partner.or_else(|| self.member_after(self.last_peer.as_deref(), None));
        if let Some(to) = target {
            self.dial(to, out);
        }
    }

    fn dial(&mut self, to: String, out: &mut Vec<Action>) {
        let id = self.new_id();
        self.last_peer = Some(to.clone());
        self.retry_at = None;
        self.call = Some(Call {
            id,
            peer: to.clone(),
            phase: Phase::Dialing,
        });
        out.push(Action::Dial { call: id, to });
    }

    /// Ends the current call on our side, without backoff.
    fn end_call(&mut self, out: &mut Vec<Action>) {
        if let Some(c) = self.call.take() {
            out.push(match c.phase {
                Phase::Dialing => Action::Cancel(c.id),
                Phase::Answering | Phase::Up { .. } => Action::HangUp(c.id),
            });
        }
    }

    /// `ended` is over: wait before the next automatic dial.
    fn back_off(&mut self, ended: &Call) {
        if let Phase::Up { since_ms } = ended.phase {
            if self.now_ms.saturating_sub(since_ms) >= STABLE_AFTER_MS {
                self.failures = 0;
            }
        }
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(self.now_ms.saturating_add(backoff_delay_ms(self.failures)));
    }

    fn new_id(&mut self) -> CallId {
        self.last_id += 1;
        CallId(self.last_id)
    }
}

/// The first minute after `minute_of_day` at which `hours` opens or closes.
fn next_change(hours: &OpenHours, minute_of_day: u16) -> Option<u16> {
    let m = minute_of_day % 1440;
    let now = hours.is_open(m);
    (1..1440)
        .map(|k| (m + k) % 1440)
        .find(|t| hours.is_open(*t) != now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10:00, inside [`day`].
    const TEN: u16 = 600;

    fn day() -> OpenHours {
        OpenHours::Between {
            start_min: 8 * 60,
            end_min: 20 * 60,
        }
    }

    fn settings(members: &[&str], partner: Option<&str>, open_hours: OpenHours) -> Settings {
        Settings {
            members: members.iter().map(|m| m.to_string()).collect(),
            partner: partner.map(str::to_owned),
            open_hours,
        }
    }

    fn policy(own: &str, members: &[&str], partner: Option<&str>) -> Policy {
        Policy::new(own, settings(members, partner, OpenHours::Always))
    }

    fn presence(names: &[&str], online: bool) -> Input {
        Input::Presence(names.iter().map(|n| (n.to_string(), online)).collect())
    }

    fn invite(invite: u64, from: &str) -> Input {
        Input::IncomingInvite {
            invite,
            from: from.into(),
        }
    }

    fn ended(call: u64, reason: EndReason) -> Input {
        Input::Ended {
            call: CallId(call),
            reason,
        }
    }

    fn dial(call: u64, to: &str) -> Action {
        Action::Dial {
            call: CallId(call),
            to: to.into(),
        }
    }

    fn answer(invite: u64, call: u64) -> Action {
        Action::Answer {
            invite,
            call: CallId(call),
        }
    }

    fn refuse(invite: u64, status: u16) -> Action {
        Action::Refuse { invite, status }
    }

    /// `handle` at 10:00.
    fn at(p: &mut Policy, input: Input, now_ms: u64) -> Vec<Action> {
        p.handle(input, now_ms, TEN)
    }

    /// A call with `peer` up at `now_ms`; returns its id.
    fn up_with(p: &mut Policy, peer: &str, now_ms: u64) -> u64 {
        let CallId(id) = p.call().expect("a call").0;
        assert_eq!(p.call().unwrap().1, peer);
        assert_eq!(at(p, Input::Established(CallId(id)), now_ms), []);
        assert_eq!(p.screen(TEN), WindowState::Open { with: peer.into() });
        id
    }

    #[test]
    fn backoff_delays_double_from_2_s_to_the_60_s_cap() {
        let want = [2_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000];
        for (n, d) in want.iter().enumerate() {
            assert_eq!(backoff_delay_ms(n as u32), *d, "n = {n}");
        }
        for n in (0..200).chain([u32::MAX - 1, u32::MAX]) {
            let d = backoff_delay_ms(n);
            assert!((BACKOFF_MIN_MS..=BACKOFF_MAX_MS).contains(&d), "{n}: {d}");
            assert!(backoff_delay_ms(n.saturating_add(1)) >= d);
        }
    }

    #[test]
    fn nothing_happens_before_presence_is_known() {
        let mut p = policy("alpha", &["alpha", "beta"], Some("beta"));
        assert_eq!(p.screen(TEN), WindowState::SettingUp);
        assert_eq!(at(&mut p, Input::Tick, 0), []);
        assert_eq!(p.next_deadline(), None);
        assert_eq!(at(&mut p, presence(&["beta"], false), 10), []);
        assert_eq!(p.screen(TEN), WindowState::Waiting);
        assert_eq!(p.next_deadline(), None);
        assert_eq!(at(&mut p, presence(&["beta"], true), 20), [dial(1, "beta")]);
        assert_eq!(p.screen(TEN), WindowState::Connecting { to: "beta".into() });
        up_with(&mut p, "beta", 30);
    }

    #[test]
    fn the_partner_comes_first_then_the_name_order() {
        let members = ["a", "b", "c", "d", "me"];
        let mut p = policy("me", &members, Some("c"));
        assert_eq!(at(&mut p, presence(&["b", "d"], true), 0), [dial(1, "b")]);
        // The partner coming online does not interrupt a call.
        up_with(&mut p, "b", 10);
        assert_eq!(at(&mut p, presence(&["c"], true), 20), []);
        // When the call ends, the partner is next.
        assert_eq!(at(&mut p, ended(1, EndReason::Bye), 30), []);
        assert_eq!(at(&mut p, Input::Tick, 2_030), [dial(2, "c")]);
    }

    #[test]
    fn without_a_partner_the_order_continues_after_the_last_peer() {
        let mut p = policy("me", &["a", "b", "c", "me"], None);
        assert_eq!(
            at(
                &mut p,
                presence(&["a", "b", "c", "me", "stranger"], true),
                0
            ),
            [dial(1, "a")]
        );
        // An online member that never answers cannot hold the window.
        let mut now = 0;
        let mut n = 1;
        for want in ["b", "c", "a", "b"] {
            assert_eq!(at(&mut p, ended(n, EndReason::NoAnswer), now), []);
            now = p.next_deadline().unwrap();
            n += 1;
            assert_eq!(at(&mut p, Input::Tick, now), [dial(n, want)]);
        }
        // A member that called us is the new position.
        assert_eq!(at(&mut p, ended(n, EndReason::Error), now), []);
        assert_eq!(at(&mut p, invite(7, "a"), now + 1), [answer(7, n + 1)]);
        assert_eq!(
            at(&mut p, ended(n + 1, EndReason::Bye), now + 2),
            [],
            "backoff after the answered call too"
        );
        let t = p.next_deadline().unwrap();
        assert_eq!(at(&mut p, Input::Tick, t), [dial(n + 2, "b")]);
    }

    #[test]
    fn incoming_calls_are_answered_when_idle_even_during_backoff() {
        let mut p = policy("alpha", &["alpha", "beta", "gamma"], None);
        assert_eq!(at(&mut p, invite(1, "gamma"), 0), [answer(1, 1)]);
        assert_eq!(
            p.screen(TEN),
            WindowState::Connecting { to: "gamma".into() }
        );
        up_with(&mut p, "gamma", 5);
        assert_eq!(at(&mut p, ended(1, EndReason::RtpTimeout), 10), []);
        assert_eq!(p.next_deadline(), Some(2_010));
        assert_eq!(at(&mut p, invite(2, "beta"), 20), [answer(2, 2)]);
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn a_second_call_gets_486() {
        let mut p = policy("alpha", &["alpha", "beta", "gamma", "delta"], None);
        assert_eq!(at(&mut p, presence(&["beta"], true), 0), [dial(1, "beta")]);
        // Dialing, answering and up are all busy.
        assert_eq!(at(&mut p, invite(1, "gamma"), 1), [refuse(1, BUSY_HERE)]);
        up_with(&mut p, "beta", 2);
        assert_eq!(at(&mut p, invite(2, "gamma"), 3), [refuse(2, BUSY_HERE)]);
        assert_eq!(at(&mut p, Input::Hangup, 4), [Action::HangUp(CallId(1))]);
        assert_eq!(at(&mut p, invite(4, "gamma"), 5), [answer(4, 2)]);
        assert_eq!(at(&mut p, invite(5, "delta"), 6), [refuse(5, BUSY_HERE)]);
        assert_eq!(p.call(), Some((CallId(2), "gamma", false)));
    }

    #[test]
    fn a_new_invite_from_the_peer_of_the_call_replaces_it() {
        let mut p = policy("alpha", &["alpha", "beta", "gamma"], None);
        assert_eq!(at(&mut p, presence(&["beta"], true), 0), [dial(1, "beta")]);
        up_with(&mut p, "beta", 2);
        // beta's phone restarted and calls again: our call to it is dead.
        assert_eq!(
            at(&mut p, invite(3, "beta"), 3),
            [Action::HangUp(CallId(1)), answer(3, 2)]
        );
        assert_eq!(p.call(), Some((CallId(2), "beta", false)));
        // While answering it, the same again; someone else is still busy.
        assert_eq!(
            at(&mut p, invite(4, "beta"), 4),
            [Action::HangUp(CallId(2)), answer(4, 3)]
        );
        assert_eq!(at(&mut p, invite(5, "gamma"), 5), [refuse(5, BUSY_HERE)]);
    }

    #[test]
    fn invites_from_outside_the_roster_get_403() {
        let mut p = policy("alpha", &["alpha", "beta"], None);
        assert_eq!(at(&mut p, invite(1, "mallory"), 0), [refuse(1, FORBIDDEN)]);
        assert_eq!(p.call(), None);
    }

    #[test]
    fn glare_the_smaller_name_keeps_its_outgoing_call() {
        let mut alpha = policy("alpha", &["alpha", "beta"], None);
        assert_eq!(
            at(&mut alpha, presence(&["beta"], true), 0),
            [dial(1, "beta")]
        );
        assert_eq!(at(&mut alpha, invite(9, "beta"), 1), [refuse(9, BUSY_HERE)]);
        assert_eq!(alpha.call(), Some((CallId(1), "beta", false)));

        let mut beta = policy("beta", &["alpha", "beta"], None);
        assert_eq!(
            at(&mut beta, presence(&["alpha"], true), 0),
            [dial(1, "alpha")]
        );
        assert_eq!(
            at(&mut beta, invite(9, "alpha"), 1),
            [Action::Cancel(CallId(1)), answer(9, 2)]
        );
        assert_eq!(beta.call(), Some((CallId(2), "alpha", false)));
        // The 486 for the cancelled call comes late and changes nothing.
        assert_eq!(at(&mut beta, ended(1, EndReason::Refused(486)), 2), []);
        assert_eq!(beta.call(), Some((CallId(2), "alpha", false)));
        // So does a 200 OK that crossed the CANCEL: that call is hung up.
        assert_eq!(
            at(&mut beta, Input::Established(CallId(1)), 3),
            [Action::HangUp(CallId(1))]
        );
        up_with(&mut beta, "alpha", 4);
    }

    #[test]
    fn glare_with_a_third_member_is_just_busy() {
        let mut beta = policy("beta", &["alpha", "beta", "gamma"], None);
        assert_eq!(
            at(&mut beta, presence(&["gamma"], true), 0),
            [dial(1, "gamma")]
        );
        assert_eq!(at(&mut beta, invite(3, "alpha"), 1), [refuse(3, BUSY_HERE)]);
        assert_eq!(beta.call(), Some((CallId(1), "gamma", false)));
    }

    #[test]
    fn every_end_redials_after_a_capped_backoff_reset_by_a_stable_call() {
        let mut p = policy("alpha", &["alpha", "beta"], Some("beta"));
        assert_eq!(at(&mut p, presence(&["beta"], true), 0), [dial(1, "beta")]);
        let reasons = [
            EndReason::RtpTimeout,
            EndReason::Bye,
            EndReason::Refused(486),
            EndReason::NoAnswer,
            EndReason::Error,
            EndReason::Refused(488),
            EndReason::RtpTimeout,
            EndReason::Bye,
        ];
        let delays = [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000];
        let mut now = 0;
        for (n, (reason, delay)) in reasons.into_iter().zip(delays).enumerate() {
            let id = n as u64 + 1;
            if n % 2 == 1 {
                // Calls that come up but end quickly count as well.
                up_with(&mut p, "beta", now);
                now += STABLE_AFTER_MS - 1;
            }
            assert_eq!(at(&mut p, ended(id, reason), now), []);
            assert_eq!(p.screen(TEN), WindowState::Waiting);
            assert_eq!(p.next_deadline(), Some(now + delay), "{reason:?}");
            assert_eq!(at(&mut p, Input::Tick, now + delay - 1), []);
            now += delay;
            assert_eq!(at(&mut p, Input::Tick, now), [dial(id + 1, "beta")]);
        }
        // A call that stayed up a minute starts the count again.
        up_with(&mut p, "beta", now);
        now += STABLE_AFTER_MS;
        assert_eq!(at(&mut p, ended(9, EndReason::Bye), now), []);
        assert_eq!(p.next_deadline(), Some(now + BACKOFF_MIN_MS));
    }

    #[test]
    fn a_member_that_declines_is_skipped_for_a_while() {
        let mut p = policy("alpha", &["alpha", "beta", "gamma"], Some("gamma"));
        assert_eq!(
            at(&mut p, presence(&["beta", "gamma"], true), 0),
            [dial(1, "gamma")]
        );
        assert_eq!(at(&mut p, ended(1, EndReason::Refused(DECLINE)), 10), []);
        assert_eq!(at(&mut p, Input::Tick, 2_010), [dial(2, "beta")]);
        up_with(&mut p, "beta", 2_020);
        assert_eq!(at(&mut p, ended(2, EndReason::Bye), 3_000), []);
        // The partner is still held: beta again, after the backoff.
        assert_eq!(p.next_deadline(), Some(3_000 + 4_000));
        assert_eq!(at(&mut p, Input::Tick, 7_000), [dial(3, "beta")]);
        assert_eq!(at(&mut p, ended(3, EndReason::Refused(DECLINE)), 8_000), []);
        // Both hold now: the next deadline is the end of the first hold.
        assert_eq!(at(&mut p, Input::Tick, 16_000), []);
        assert_eq!(p.next_deadline(), Some(10 + DECLINE_HOLD_MS));
        assert_eq!(at(&mut p, Input::Next, 16_001), [], "next skips them too");
        assert_eq!(
            at(&mut p, Input::Tick, 10 + DECLINE_HOLD_MS),
            [dial(4, "gamma")]
        );
        // A member that calls us is no longer held.
        assert_eq!(
            at(&mut p, Input::Hangup, DECLINE_HOLD_MS + 20),
            [Action::Cancel(CallId(4))]
        );
        assert_eq!(
            at(&mut p, invite(5, "beta"), DECLINE_HOLD_MS + 30),
            [answer(5, 5)]
        );
        assert_eq!(
            at(&mut p, Input::Hangup, DECLINE_HOLD_MS + 40),
            [Action::HangUp(CallId(5))]
        );
        assert_eq!(
            at(&mut p, Input::Next, DECLINE_HOLD_MS + 50),
            [dial(6, "gamma")]
        );
        assert_eq!(
            at(&mut p, Input::Next, DECLINE_HOLD_MS + 60),
            [Action::Cancel(CallId(6)), dial(7, "beta")]
        );
    }

    #[test]
    fn next_cycles_through_online_members_in_name_order() {
        let mut p = policy("carol", &["erin", "alice", "carol", "dave", "bob"], None);
        assert_eq!(
            at(
                &mut p,
                presence(&["alice", "bob", "carol", "dave", "erin"], true),
                0
            ),
            [dial(1, "alice")]
        );
        up_with(&mut p, "alice", 1);
        assert_eq!(at(&mut p, presence(&["dave"], false), 2), []);
        let mut now = 10;
        let mut id = 1;
        // Self and dave (offline) are skipped; the order wraps around.
        for want in ["bob", "erin", "alice", "bob"] {
            let end = if id % 2 == 0 {
                Action::Cancel(CallId(id))
            } else {
                Action::HangUp(CallId(id))
            };
            assert_eq!(at(&mut p, Input::Next, now), [end, dial(id + 1, want)]);
            id += 1;
            if id % 2 == 1 {
                up_with(&mut p, want, now + 1);
            }
            now += 10;
        }
        assert_eq!(p.next_deadline(), None, "next does not back off");
    }

    #[test]
    fn next_without_anyone_else_keeps_the_call() {
        let mut p = policy("alpha", &["alpha", "beta", "gamma"], None);
        assert_eq!(at(&mut p, presence(&["beta"], true), 0), [dial(1, "beta")]);
        up_with(&mut p, "beta", 1);
        assert_eq!(at(&mut p, Input::Next, 2), []);
        assert_eq!(p.call(), Some((CallId(1), "beta", true)));
    }

    #[test]
    fn next_when_idle_dials_at_once_despite_the_backoff() {
        let mut p = policy("alpha", &["alpha", "beta", "gamma"], Some("beta"));
        assert_eq!(
            at(&mut p, presence(&["beta", "gamma"], true), 0),
            [dial(1, "beta")]
        );
        assert_eq!(at(&mut p, ended(1, EndReason::NoAnswer), 1), []);
        assert_eq!(at(&mut p, Input::Next, 2), [dial(2, "gamma")]);
        assert_eq!(at(&mut p, ended(2, EndReason::NoAnswer), 3), []);
        // Idle, the order goes on from the last member and may come back to it.
        assert_eq!(at(&mut p, presence(&["beta"], false), 4), []);
        assert_eq!(at(&mut p, Input::Next, 5), [dial(3, "gamma")]);
        // Nobody online: nothing.
        assert_eq!(at(&mut p, ended(3, EndReason::NoAnswer), 6), []);
        assert_eq!(at(&mut p, presence(&["gamma"], false), 7), []);
        assert_eq!(at(&mut p, Input::Next, 8), []);
        assert_eq!(p.screen(TEN), WindowState::Waiting);
    }

    #[test]
    fn a_closed_curtain_hangs_up_refuses_and_never_dials() {
        let mut p = policy("alpha", &["alpha", "beta", "gamma"], Some("beta"));
        assert_eq!(
            at(&mut p, presence(&["beta", "gamma"], true), 0),
            [dial(1, "beta")]
        );
        up_with(&mut p, "beta", 1);
        assert_eq!(
            at(&mut p, Input::CurtainToggle, 2),
            [Action::HangUp(CallId(1))]
        );
        assert!(p.curtain_closed());
        assert_eq!(p.screen(TEN), WindowState::Curtain);
        assert_eq!(p.screen(23 * 60), WindowState::Curtain, "the curtain wins");
        assert_eq!(p.next_deadline(), None);
        assert_eq!(at(&mut p, invite(1, "gamma"), 3), [refuse(1, DECLINE)]);
        for input in [
            Input::Tick,
            Input::Next,
            Input::CallNow("gamma".into()),
            presence(&["beta", "gamma"], true),
            Input::Hangup,
            Input::Curtain { closed: true },
            ended(1, EndReason::Bye),
        ] {
            assert_eq!(at(&mut p, input.clone(), 100_000), [], "{input:?}");
        }
        // Opening forgets the backoff and dials at once.
        assert_eq!(at(&mut p, Input::CurtainToggle, 100_001), [dial(2, "beta")]);
        assert!(!p.curtain_closed());
        // Closing while dialing cancels.
        assert_eq!(
            at(&mut p, Input::Curtain { closed: true }, 100_002),
            [Action::Cancel(CallId(2))]
        );
        assert_eq!(
            at(&mut p, Input::Curtain { closed: false }, 100_003),
            [dial(3, "beta")]
        );
    }

    #[test]
    fn outside_open_hours_the_window_is_closed() {
        let mut p = Policy::new("alpha", settings(&["alpha", "beta"], Some("beta"), day()));
        assert_eq!(p.handle(presence(&["beta"], true), 0, 7 * 60), []);
        assert_eq!(p.screen(7 * 60), WindowState::ClosedUntil { hh: 8, mm: 0 });
        assert_eq!(p.screen(21 * 60), WindowState::ClosedUntil { hh: 8, mm: 0 });
        assert_eq!(p.screen(21 * 60).to_string(), "Closed until 08:00");
        assert_eq!(p.next_hours_change(7 * 60), Some(8 * 60));
        assert_eq!(p.next_hours_change(21 * 60), Some(8 * 60));
        assert_eq!(p.next_hours_change(TEN), Some(20 * 60));
        assert_eq!(p.next_deadline(), None);
        assert_eq!(p.handle(invite(1, "beta"), 1, 7 * 60), [refuse(1, DECLINE)]);
        assert_eq!(p.handle(Input::CallNow("beta".into()), 2, 7 * 60), []);
        assert_eq!(p.handle(Input::Next, 3, 7 * 60), []);
        // Opening time: dial.
        assert_eq!(p.handle(Input::Tick, 4, 8 * 60), [dial(1, "beta")]);
        p.handle(Input::Established(CallId(1)), 5, 8 * 60);
        // Closing time hangs up; the first closed minute counts.
        assert_eq!(p.handle(Input::Tick, 6, 20 * 60 - 1), []);
        assert_eq!(
            p.handle(Input::Tick, 7, 20 * 60),
            [Action::HangUp(CallId(1))]
        );
        assert_eq!(p.next_deadline(), None);
        assert_eq!(p.handle(Input::Tick, 1_000_000, 20 * 60 + 1), []);
    }

    #[test]
    fn open_hours_over_midnight_and_always() {
        let night = OpenHours::Between {
            start_min: 22 * 60,
            end_min: 6 * 60 + 30,
        };
        let mut p = Policy::new("alpha", settings(&["alpha", "beta"], None, night));
        assert_eq!(p.screen(TEN), WindowState::ClosedUntil { hh: 22, mm: 0 });
        assert_eq!(p.screen(23 * 60), WindowState::SettingUp);
        assert_eq!(p.next_hours_change(23 * 60), Some(6 * 60 + 30));
        assert_eq!(p.next_hours_change(1439), Some(6 * 60 + 30));
        assert_eq!(p.next_hours_change(TEN), Some(22 * 60));
        // Minutes past the day wrap.
        assert_eq!(
            p.handle(presence(&["beta"], true), 0, 1440 + 60),
            [dial(1, "beta")]
        );
        let p = policy("alpha", &["alpha"], None);
        assert_eq!(p.next_hours_change(TEN), None);
        assert_eq!(p.screen(TEN), WindowState::SettingUp);
    }

    #[test]
    fn reloading_settings_applies_at_once() {
        let mut p = policy("alpha", &["alpha", "beta", "gamma"], None);
        assert_eq!(
            at(&mut p, presence(&["beta", "gamma"], true), 0),
            [dial(1, "beta")]
        );
        up_with(&mut p, "beta", 1);
        // A new partner does not interrupt the call.
        let s = settings(
            &["alpha", "beta", "gamma"],
            Some("gamma"),
            OpenHours::Always,
        );
        assert_eq!(at(&mut p, Input::Settings(s), 2), []);
        // beta leaves the roster: hung up, and the partner is called at once.
        let s = settings(&["alpha", "gamma"], Some("gamma"), OpenHours::Always);
        assert_eq!(
            at(&mut p, Input::Settings(s), 3),
            [Action::HangUp(CallId(1)), dial(2, "gamma")]
        );
        // New hours that close the window now.
        let s = settings(&["alpha", "gamma"], Some("gamma"), day());
        assert_eq!(
            p.handle(Input::Settings(s), 4, 21 * 60),
            [Action::Cancel(CallId(2))]
        );
        // A partner outside the roster is never called.
        let s = settings(&["alpha", "gamma"], Some("zed"), OpenHours::Always);
        assert_eq!(at(&mut p, Input::Settings(s), 5), [dial(3, "gamma")]);
        assert_eq!(at(&mut p, presence(&["zed"], true), 6), []);
        assert!(!p.online.contains("zed"));
    }

    #[test]
    fn call_now_hangs_up_and_dials_any_member() {
        let mut p = policy("alpha", &["alpha", "beta", "gamma", "delta"], Some("beta"));
        assert_eq!(at(&mut p, presence(&["beta"], true), 0), [dial(1, "beta")]);
        up_with(&mut p, "beta", 1);
        // Not online and not the partner: dialed all the same.
        assert_eq!(
            at(&mut p, Input::CallNow("delta".into()), 2),
            [Action::HangUp(CallId(1)), dial(2, "delta")]
        );
        // Already with delta, ourselves, strangers: nothing.
        for name in ["delta", "alpha", "mallory", ""] {
            assert_eq!(at(&mut p, Input::CallNow(name.into()), 3), [], "{name}");
        }
        assert_eq!(p.call(), Some((CallId(2), "delta", false)));
        // During a backoff: at once.
        assert_eq!(at(&mut p, ended(2, EndReason::NoAnswer), 4), []);
        assert!(p.next_deadline().is_some());
        assert_eq!(
            at(&mut p, Input::CallNow("gamma".into()), 5),
            [dial(3, "gamma")]
        );
        // When its call ends, the normal rules come back: the partner after the backoff.
        assert_eq!(at(&mut p, ended(3, EndReason::Refused(486)), 6), []);
        let t = p.next_deadline().unwrap();
        assert_eq!(t, 6 + 4_000);
        assert_eq!(at(&mut p, Input::Tick, t), [dial(4, "beta")]);
    }

    #[test]
    fn hangup_backs_off_then_redials() {
        let mut p = policy("alpha", &["alpha", "beta"], Some("beta"));
        assert_eq!(at(&mut p, Input::Hangup, 0), [], "nothing to hang up");
        assert_eq!(at(&mut p, presence(&["beta"], true), 0), [dial(1, "beta")]);
        up_with(&mut p, "beta", 10);
        assert_eq!(
            at(&mut p, Input::Hangup, 100_000),
            [Action::HangUp(CallId(1))]
        );
        assert_eq!(p.next_deadline(), Some(100_000 + BACKOFF_MIN_MS));
        assert_eq!(at(&mut p, Input::Tick, 101_000), []);
        assert_eq!(at(&mut p, Input::Tick, 102_000), [dial(2, "beta")]);
        // The IO's late report of the hung-up call is ignored.
        assert_eq!(at(&mut p, ended(1, EndReason::Bye), 102_001), []);
        assert_eq!(p.call(), Some((CallId(2), "beta", false)));
        assert_eq!(at(&mut p, Input::Established(CallId(2)), 102_002), []);
        assert_eq!(
            at(&mut p, Input::Established(CallId(2)), 102_003),
            [],
            "twice"
        );
        assert_eq!(p.call(), Some((CallId(2), "beta", true)));
    }

    #[test]
    fn a_member_going_offline_does_not_end_the_call() {
        let mut p = policy("alpha", &["alpha", "beta"], None);
        assert_eq!(at(&mut p, presence(&["beta"], true), 0), [dial(1, "beta")]);
        up_with(&mut p, "beta", 1);
        assert_eq!(at(&mut p, presence(&["beta"], false), 2), []);
        assert_eq!(p.call(), Some((CallId(1), "beta", true)));
        assert_eq!(at(&mut p, ended(1, EndReason::RtpTimeout), 3), []);
        assert_eq!(at(&mut p, Input::Tick, 2_003), [], "offline: not redialed");
        assert_eq!(p.next_deadline(), None);
        assert_eq!(
            at(&mut p, presence(&["beta"], true), 9_000),
            [dial(2, "beta")]
        );
    }

    #[test]
    fn screen_texts() {
        let texts = [
            (WindowState::SettingUp, "Setting up…"),
            (WindowState::Open { with: "b".into() }, "Open to b"),
            (
                WindowState::Connecting { to: "b".into() },
                "Connecting to b…",
            ),
            (WindowState::Waiting, "Waiting for a window"),
            (
                WindowState::ClosedUntil { hh: 7, mm: 5 },
                "Closed until 07:05",
            ),
            (WindowState::Curtain, "Curtain closed"),
        ];
        for (screen, text) in texts {
            assert_eq!(screen.to_string(), text);
        }
    }

    /// A small deterministic generator (xorshift64).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const NAMES: &[&str] = &["alpha", "beta", "delta", "gamma", "mallory", ""];

    fn random_input(rng: &mut Rng, live: Option<CallId>, stale: &[CallId], invite: u64) -> Input {
        let reasons = [
            EndReason::Bye,
            EndReason::RtpTimeout,
            EndReason::Refused(BUSY_HERE),
            EndReason::Refused(DECLINE),
            EndReason::Refused(488),
            EndReason::NoAnswer,
            EndReason::Error,
        ];
        let old = |rng: &mut Rng| {
            if stale.is_empty() || rng.below(4) == 0 {
                CallId(rng.below(40) as u64)
            } else {
                stale[rng.below(stale.len())]
            }
        };
        match rng.below(14) {
            0 | 1 => Input::Presence(
                (0..1 + rng.below(3))
                    .map(|_| (rng.pick(NAMES).to_string(), rng.below(3) != 0))
                    .collect(),
            ),
            2 | 3 => Input::IncomingInvite {
                invite,
                from: rng.pick(NAMES).into(),
            },
            4 => live.map_or(Input::Tick, Input::Established),
            5 => Input::Established(old(rng)),
            6 => match live {
                Some(call) => Input::Ended {
                    call,
                    reason: reasons[rng.below(reasons.len())],
                },
                None => Input::Tick,
            },
            7 => Input::Ended {
                call: old(rng),
                reason: reasons[rng.below(reasons.len())],
            },
            8 => Input::Next,
            9 => match rng.below(4) {
                0 => Input::CurtainToggle,
                _ => Input::Curtain {
                    closed: rng.below(5) == 0,
                },
            },
            10 => Input::CallNow(rng.pick(NAMES).into()),
            11 => Input::Hangup,
            12 => {
                let members: Vec<&str> = NAMES[..5]
                    .iter()
                    .filter(|_| rng.below(5) != 0)
                    .copied()
                    .collect();
                let partner = (rng.below(2) == 0).then(|| rng.pick(NAMES));
                let hours = match rng.below(4) {
                    0 | 1 => OpenHours::Always,
                    2 => day(),
                    _ => OpenHours::Between {
                        start_min: 22 * 60,
                        end_min: 6 * 60,
                    },
                };
                Input::Settings(settings(&members, partner, hours))
            }
            _ => Input::Tick,
        }
    }

    #[test]
    fn random_inputs_keep_the_invariants() {
        // What the runs exercised, to show they reach every rule.
        let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
        for seed in 1..=40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let own = "delta";
            let mut p = Policy::new(
                own,
                settings(&["alpha", "beta", "gamma", "delta"], Some("gamma"), day()),
            );
            let (mut now, mut minute) = (0u64, TEN);
            let mut live: Option<CallId> = None; // the IO's call
            let mut stale: Vec<CallId> = Vec::new();
            for step in 0..2_000u64 {
                match rng.below(6) {
                    0 => now += rng.below(70_000) as u64,
                    1 | 2 => now += rng.below(3_000) as u64,
                    3 => now = p.next_deadline().unwrap_or(now),
                    _ => {}
                }
                if rng.below(25) == 0 {
                    // Mostly open hours, so that the open rules get most of the steps.
                    minute = match rng.below(3) {
                        0 => rng.below(1440) as u16,
                        _ => TEN,
                    };
                }
                let input = random_input(&mut rng, live, &stale, step);
                let ctx = format!("seed {seed} step {step}: {input:?}");
                // What the IO holds when the input arrives.
                let mut io: Vec<CallId> = live.into_iter().collect();
                match &input {
                    Input::Ended { call, .. } => io.retain(|c| c != call),
                    Input::Established(id) if !io.contains(id) => io.push(*id),
                    _ => {}
                }
                let retry_before = p.retry_at;
                let actions = p.handle(input.clone(), now, minute);
                let ctx = format!("{ctx} → {actions:?}");

                // Every INVITE gets exactly one answer or refusal, and only INVITEs do.
                let replies: Vec<u64> = actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::Answer { invite, .. } | Action::Refuse { invite, .. } => {
                            Some(*invite)
                        }
                        _ => None,
                    })
                    .collect();
                match &input {
                    Input::IncomingInvite { invite, .. } => {
                        assert_eq!(replies, [*invite], "{ctx}")
                    }
                    _ => assert!(replies.is_empty(), "{ctx}"),
                }

                // At most one call in the IO at any point of the action list.
                for a in &actions {
                    match a {
                        Action::Dial { call, to } => {
                            assert!(io.is_empty(), "{ctx}");
                            assert!(p.is_open(), "dial while closed: {ctx}");
                            assert!(p.is_member(to) && to != own, "{ctx}");
                            if !matches!(input, Input::CallNow(_)) {
                                assert!(p.online.contains(to), "{ctx}");
                            }
                            io.push(*call);
                            *seen.entry("dial").or_default() += 1;
                        }
                        Action::Answer { call, .. } => {
                            assert!(io.is_empty(), "{ctx}");
                            assert!(p.is_open(), "{ctx}");
                            io.push(*call);
                            *seen.entry("answer").or_default() += 1;
                        }
                        Action::Refuse { status, .. } => {
                            assert!([BUSY_HERE, DECLINE, FORBIDDEN].contains(status), "{ctx}");
                            *seen
                                .entry(if *status == BUSY_HERE {
                                    "486"
                                } else {
                                    "603/403"
                                })
                                .or_default() += 1;
                        }
                        Action::Cancel(id) | Action::HangUp(id) => {
                            assert!(io.contains(id), "ending an unknown call: {ctx}");
                            io.retain(|c| c != id);
                            stale.push(*id);
                            *seen.entry("end").or_default() += 1;
                        }
                    }
                }
                assert!(io.len() <= 1, "{ctx}");
                assert_eq!(p.call().map(|c| c.0), io.first().copied(), "{ctx}");
                live = io.first().copied();

                // Closed: no call, and the screen says so.
                if !p.is_open() {
                    assert_eq!(p.call, None, "{ctx}");
                    assert!(
                        matches!(
                            p.screen(minute),
                            WindowState::Curtain | WindowState::ClosedUntil { .. }
                        ),
                        "{ctx}"
                    );
                    *seen.entry("closed").or_default() += 1;
                } else {
                    match p.screen(minute) {
                        WindowState::Open { with } => {
                            assert_eq!(p.call(), Some((live.unwrap(), with.as_str(), true)))
                        }
                        WindowState::Connecting { to } => {
                            assert_eq!(p.call(), Some((live.unwrap(), to.as_str(), false)))
                        }
                        WindowState::Waiting | WindowState::SettingUp => {
                            assert_eq!(live, None, "{ctx}")
                        }
                        other => panic!("{other:?} while open: {ctx}"),
                    }
                }

                // Backoffs stay within their bounds.
                if p.retry_at != retry_before {
                    if let Some(t) = p.retry_at {
                        let d = t - now;
                        assert!((BACKOFF_MIN_MS..=BACKOFF_MAX_MS).contains(&d), "{d}: {ctx}");
                        *seen.entry("backoff").or_default() += 1;
                        if d == BACKOFF_MAX_MS {
                            *seen.entry("backoff cap").or_default() += 1;
                        }
                    }
                }
                // The IO loop never spins.
                if let Some(t) = p.next_deadline() {
                    assert!(t > now, "{ctx}");
                }
                if let [Action::Cancel(_), Action::Answer { .. }] = actions.as_slice() {
                    *seen.entry("glare answered").or_default() += 1;
                }
            }
        }
        for what in [
            "dial",
            "answer",
            "486",
            "603/403",
            "end",
            "closed",
            "backoff",
            "backoff cap",
            "glare answered",
        ] {
            assert!(
                seen.get(what).copied().unwrap_or(0) > 0,
                "never saw {what}: {seen:?}"
            );
        }
    }

    /// SIP between policies: INVITE, 200 OK, ACK, 486/603, CANCEL and BYE, each delayed by a
    /// random latency; messages of one dialog stay in order, those of different dialogs do
    /// not (UDP).
    struct Sim {
        names: Vec<String>,
        windows: Vec<Policy>,
        /// (time, sequence) → (window, event).
        queue: BTreeMap<(u64, u64), (usize, Event)>,
        seq: u64,
        /// Per (from, to, dialog): the last delivery time, to keep a dialog in order.
        last_at: BTreeMap<(usize, usize, usize), u64>,
        dialogs: Vec<Dialog>,
        rng: Rng,
        now: u64,
        max_latency: usize,
        /// Which racy paths the run went through.
        seen: BTreeMap<&'static str, u32>,
    }

    #[derive(Debug, Clone, Copy)]
    enum Event {
        Tick,
        Invite(usize),
        Ok(usize),
        Ack(usize),
        Refused(usize, u16),
        Cancel(usize),
        Bye(usize),
        /// Both sides lose the media at once (a network cut).
        Cut(usize),
        /// The network cuts whatever call this window has up.
        CutAny,
        /// A press or a maintainer's command, by index in [`USER`].
        User(usize),
    }

    /// What people do to a window.
    const USER: [fn() -> Input; 5] = [
        || Input::Next,
        || Input::CurtainToggle,
        || Input::Hangup,
        || Input::CallNow("alpha".into()),
        || Input::Curtain { closed: false },
    ];

    /// One INVITE and what became of it; the invite id is the dialog's index.
    #[derive(Debug)]
    struct Dialog {
        caller: usize,
        callee: usize,
        caller_call: CallId,
        callee_call: Option<CallId>,
        /// Whether that side's IO still holds the call.
        caller_live: bool,
        callee_live: bool,
        ok_delivered: bool,
        cancelled_in_time: bool,
    }

    impl Sim {
        fn new(names: &[&str], seed: u64, max_latency: usize) -> Sim {
            let windows = names.iter().map(|n| policy(n, names, None)).collect();
            Sim {
                names: names.iter().map(|n| n.to_string()).collect(),
                windows,
                queue: BTreeMap::new(),
                seq: 0,
                last_at: BTreeMap::new(),
                dialogs: Vec::new(),
                rng: Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1),
                now: 0,
                max_latency,
                seen: BTreeMap::new(),
            }
        }

        fn at(&mut self, at: u64, to: usize, event: Event) {
            self.seq += 1;
            self.queue.insert((at, self.seq), (to, event));
        }

        fn send(&mut self, from: usize, to: usize, dialog: usize, event: Event) {
            let latency = 1 + self.rng.below(self.max_latency) as u64;
            let last = self.last_at.entry((from, to, dialog)).or_default();
            let at = (self.now + latency).max(*last);
            *last = at;
            self.at(at, to, event);
        }

        fn live_calls(&self, w: usize) -> usize {
            self.dialogs
                .iter()
                .filter(|d| (d.caller == w && d.caller_live) || (d.callee == w && d.callee_live))
                .count()
        }

        fn feed(&mut self, w: usize, input: Input) {
            let actions = self.windows[w].handle(input, self.now, TEN);
            for action in actions {
                self.apply(w, action);
            }
            if let Some(t) = self.windows[w].next_deadline() {
                self.at(t, w, Event::Tick);
            }
            assert!(
                self.live_calls(w) <= 1,
                "{}: {:?}",
                self.names[w],
                self.dialogs
            );
        }

        fn apply(&mut self, w: usize, action: Action) {
            match action {
                Action::Dial { call, to } => {
                    let callee = self.names.iter().position(|n| *n == to).unwrap();
                    self.dialogs.push(Dialog {
                        caller: w,
                        callee,
                        caller_call: call,
                        callee_call: None,
                        caller_live: true,
                        callee_live: false,
                        ok_delivered: false,
                        cancelled_in_time: false,
                    });
                    let i = self.dialogs.len() - 1;
                    self.send(w, callee, i, Event::Invite(i));
                }
                Action::Answer { invite, call } => {
                    let d = &mut self.dialogs[invite as usize];
                    assert_eq!(d.callee, w);
                    d.callee_call = Some(call);
                    d.callee_live = true;
                    let caller = d.caller;
                    self.send(w, caller, invite as usize, Event::Ok(invite as usize));
                }
                Action::Refuse { invite, status } => {
                    let caller = self.dialogs[invite as usize].caller;
                    self.send(
                        w,
                        caller,
                        invite as usize,
                        Event::Refused(invite as usize, status),
                    );
                }
                Action::Cancel(call) => {
                    let i = self
                        .dialogs
                        .iter()
                        .position(|d| d.caller == w && d.caller_call == call)
                        .unwrap();
                    self.dialogs[i].caller_live = false;
                    *self.seen.entry("cancel").or_default() += 1;
                    let callee = self.dialogs[i].callee;
                    self.send(w, callee, i, Event::Cancel(i));
                }
                Action::HangUp(call) => {
                    let i = self
                        .dialogs
                        .iter()
                        .position(|d| {
                            (d.caller == w && d.caller_call == call)
                                || (d.callee == w && d.callee_call == Some(call))
                        })
                        .unwrap();
                    let d = &mut self.dialogs[i];
                    let other = if d.caller == w {
                        d.caller_live = false;
                        d.callee
                    } else {
                        d.callee_live = false;
                        d.caller
                    };
                    self.send(w, other, i, Event::Bye(i));
                }
            }
        }

        fn deliver(&mut self, to: usize, event: Event) {
            match event {
                Event::Tick => self.feed(to, Input::Tick),
                Event::Invite(i) => {
                    let from = self.names[self.dialogs[i].caller].clone();
                    self.feed(
                        to,
                        Input::IncomingInvite {
                            invite: i as u64,
                            from,
                        },
                    );
                }
                Event::Ok(i) => {
                    let d = &mut self.dialogs[i];
                    if d.cancelled_in_time {
                        return;
                    }
                    d.ok_delivered = true;
                    if !d.caller_live {
                        *self.seen.entry("200 after CANCEL").or_default() += 1;
                    }
                    // A 200 OK after our CANCEL still makes a call, which the policy ends.
                    d.caller_live = true;
                    let (call, callee) = (d.caller_call, d.callee);
                    self.send(to, callee, i, Event::Ack(i));
                    self.feed(to, Input::Established(call));
                }
                Event::Ack(i) => {
                    let d = &self.dialogs[i];
                    if d.callee_live {
                        let call = d.callee_call.unwrap();
                        self.feed(to, Input::Established(call));
                    }
                }
                Event::Refused(i, status) => {
                    let d = &mut self.dialogs[i];
                    if d.caller_live {
                        *self.seen.entry("refused").or_default() += 1;
                        d.caller_live = false;
                        let call = d.caller_call;
                        self.feed(to, ended(call.0, EndReason::Refused(status)));
                    }
                }
                Event::Cancel(i) => {
                    // In time only while the callee has not sent its 200 OK (still ringing).
                    let in_time = self.rng.below(2) == 0;
                    let d = &mut self.dialogs[i];
                    if d.callee_live && !d.ok_delivered && in_time {
                        d.cancelled_in_time = true;
                        *self.seen.entry("CANCEL in time").or_default() += 1;
                        d.callee_live = false;
                        let call = d.callee_call.unwrap();
                        self.feed(to, ended(call.0, EndReason::Bye));
                    }
                }
                Event::Bye(i) => {
                    let d = &mut self.dialogs[i];
                    let (live, call) = if d.caller == to {
                        (&mut d.caller_live, Some(d.caller_call))
                    } else {
                        (&mut d.callee_live, d.callee_call)
                    };
                    if *live {
                        *live = false;
                        self.feed(to, ended(call.unwrap().0, EndReason::Bye));
                    }
                }
                Event::CutAny => {
                    if let Some(i) = self.both_live().into_iter().find(|i| {
                        let d = &self.dialogs[*i];
                        d.caller == to || d.callee == to
                    }) {
                        self.deliver(to, Event::Cut(i));
                    }
                }
                Event::User(n) => self.feed(to, USER[n]()),
                Event::Cut(i) => {
                    let d = &mut self.dialogs[i];
                    let sides = [
                        (d.caller, d.caller_live, Some(d.caller_call)),
                        (d.callee, d.callee_live, d.callee_call),
                    ];
                    d.caller_live = false;
                    d.callee_live = false;
                    for (w, live, call) in sides {
                        if live {
                            self.feed(w, ended(call.unwrap().0, EndReason::RtpTimeout));
                        }
                    }
                }
            }
        }

        fn run_until(&mut self, end: u64) {
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > end {
                    break;
                }
                let ((at, _), (to, event)) = entry.remove_entry();
                self.now = at;
                self.deliver(to, event);
            }
            self.now = end;
        }

        /// Every window learns that every other one is online, at the same moment.
        fn all_online(&mut self) {
            for w in 0..self.windows.len() {
                let others: Vec<&str> = self.names.iter().map(String::as_str).collect();
                let input = presence(&others, true);
                self.feed(w, input);
            }
        }

        /// The dialogs both sides' IO hold.
        fn both_live(&self) -> Vec<usize> {
            (0..self.dialogs.len())
                .filter(|i| self.dialogs[*i].caller_live && self.dialogs[*i].callee_live)
                .collect()
        }

        /// The dialogs both sides hold, each checked to be up in both policies.
        fn established(&self) -> Vec<usize> {
            let up = self.both_live();
            for i in &up {
                let d = &self.dialogs[*i];
                let caller = self.windows[d.caller].call().unwrap();
                let callee = self.windows[d.callee].call().unwrap();
                assert_eq!(caller, (d.caller_call, self.names[d.callee].as_str(), true));
                assert_eq!(
                    callee,
                    (d.callee_call.unwrap(), self.names[d.caller].as_str(), true)
                );
            }
            up
        }
    }

    #[test]
    fn glare_between_two_windows_leaves_exactly_one_call() {
        let mut seen = BTreeMap::new();
        for seed in 1..=300 {
            let mut sim = Sim::new(&["alpha", "beta"], seed, 1 + seed as usize % 200);
            // Both dial at the same moment.
            sim.all_online();
            assert_eq!(sim.dialogs.len(), 2, "two INVITEs cross");
            sim.run_until(120_000);
            // And again, each time the network cuts the call for both at once.
            for round in 0..3 {
                let up = sim.established();
                assert_eq!(up.len(), 1, "seed {seed} round {round}: {:?}", sim.dialogs);
                assert!(sim.queue.is_empty(), "seed {seed}: quiet once connected");
                let at = sim.now;
                sim.at(at, 0, Event::Cut(up[0]));
                sim.run_until(at + 120_000);
            }
            for (what, n) in &sim.seen {
                *seen.entry(*what).or_insert(0) += n;
            }
        }
        // Both orders were run into: the loser cancels when the winner's INVITE comes first;
        // the winner's 486 comes first when the winner's INVITE is slower.
        for what in ["cancel", "refused"] {
            assert!(
                seen.get(what).copied().unwrap_or(0) > 0,
                "never {what}: {seen:?}"
            );
        }
    }

    #[test]
    fn two_windows_disturbed_at_random_always_end_in_one_call() {
        let mut seen = BTreeMap::new();
        for seed in 1..=300 {
            let mut sim = Sim::new(&["alpha", "beta"], seed, 1 + seed as usize % 300);
            sim.all_online();
            // Five minutes of presses, maintainer commands and network cuts.
            let mut rng = Rng(seed * 0x1234_5679);
            for _ in 0..80 {
                let at = rng.below(300_000) as u64;
                let event = match rng.below(5) {
                    0 => Event::CutAny,
                    _ => Event::User(rng.below(USER.len() - 1)),
                };
                sim.at(at, rng.below(2), event);
            }
            sim.run_until(300_000);
            // Then both curtains open and the windows are left alone.
            sim.at(300_001, 0, Event::User(USER.len() - 1));
            sim.at(300_001, 1, Event::User(USER.len() - 1));
            sim.run_until(300_000 + DECLINE_HOLD_MS + 10 * BACKOFF_MAX_MS);
            assert_eq!(sim.established().len(), 1, "seed {seed}: {:?}", sim.dialogs);
            assert!(sim.queue.is_empty(), "seed {seed}: quiet once connected");
            for (what, n) in &sim.seen {
                *seen.entry(*what).or_insert(0) += n;
            }
        }
        for what in ["cancel", "refused", "CANCEL in time", "200 after CANCEL"] {
            assert!(
                seen.get(what).copied().unwrap_or(0) > 0,
                "never {what}: {seen:?}"
            );
        }
    }

    #[test]
    fn glare_keeps_the_smaller_names_call_when_both_invites_arrive_first() {
        // Equal latencies: each side sees the other's INVITE while still dialing.
        let mut sim = Sim::new(&["alpha", "beta"], 7, 1);
        sim.all_online();
        sim.run_until(10_000);
        let up = sim.established();
        assert_eq!(up.len(), 1);
        let d = &sim.dialogs[up[0]];
        assert_eq!(sim.names[d.caller], "alpha", "{:?}", sim.dialogs);
    }

    #[test]
    fn three_windows_settle_on_one_call_and_the_third_keeps_trying() {
        for seed in 1..=100 {
            let mut sim = Sim::new(&["alpha", "beta", "gamma"], seed, 1 + seed as usize % 150);
            sim.all_online();
            sim.run_until(60_000);
            let up = sim.established();
            assert_eq!(up.len(), 1, "seed {seed}: {:?}", sim.dialogs);
            sim.run_until(600_000);
            assert_eq!(sim.established(), up, "seed {seed}: the call stays");
            let d = &sim.dialogs[up[0]];
            let third = 3 - d.caller - d.callee;
            let tries = sim.dialogs.iter().filter(|d| d.caller == third).count();
            assert!(tries > 5, "seed {seed}: {tries} tries");
            assert!(
                sim.windows[third].call().is_none_or(|c| !c.2),
                "seed {seed}"
            );
        }
    }
}
