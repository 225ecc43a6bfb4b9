//! Durations of a request's stages for `pg_rest.server_timing`.

use std::time::Instant;

/// Durations of the stages of one request, for `pg_rest.server_timing`'s `Server-Timing`
/// header (PostgREST's names: jwt, parse, transaction, response).
pub(super) struct StageTimer {
    last: Option<Instant>,
    laps: Vec<(&'static str, f64)>,
}

impl StageTimer {
    pub(super) fn new(enabled: bool) -> StageTimer {
        StageTimer {
            last: enabled.then(Instant::now),
            laps: Vec::new(),
        }
    }

    /// Ends the stage `name`.
    pub(super) fn lap(&mut self, name: &'static str) {
        if let Some(last) = self.last {
            let now = Instant::now();
            self.laps.push((name, (now - last).as_secs_f64() * 1000.0));
            self.last = Some(now);
        }
    }

    pub(super) fn header(&self) -> Option<String> {
        self.last?;
        let parts: Vec<String> = self
            .laps
            .iter()
            .map(|(name, ms)| format!("{name};dur={ms:.1}"))
            .collect();
        Some(parts.join(", "))
    }
}
