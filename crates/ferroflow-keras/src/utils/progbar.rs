//! `keras.utils.Progbar`: the progress line `fit`, `evaluate` and `predict` print.
//!
//! Byte for byte Keras 3's format (`keras/src/utils/progbar.py`): a bold `step/total` counter, a
//! 20-character bar of `━` (green done, white to go), the ETA while running or the elapsed time
//! at the end, the time per step (excluding the first step), then ` - name: value` for each log
//! (4 decimals, or scientific below 1e-3). Each update moves back over the previous line with
//! backspaces and `\r` and pads a shorter line with spaces — also when
//! the output is not a terminal, as Keras does on POSIX — at most every 0.05 s, and the last
//! update ends the line. `verbose = 2` prints one line at the end only.
//!
//! (We format the line ourselves rather than through `indicatif`: Keras's exact layout, its
//! throttling and its behaviour on pipes are simpler to reproduce directly than through a
//! template engine.)

use std::io::Write;
use std::time::Instant;

/// A Keras-style progress bar.
pub struct Progbar {
    target: Option<usize>,
    verbose: u8,
    start: Instant,
    after_first: Option<Instant>,
    last_update: Option<Instant>,
    prev_width: usize,
    out: Box<dyn Write + Send>,
}

impl Progbar {
    /// A bar for `target` steps (`None` = unknown) printing to stdout.
    pub fn new(target: Option<usize>, verbose: u8) -> Progbar {
        Progbar::to_writer(target, verbose, Box::new(std::io::stdout()))
    }

    /// A bar printing to `out` (tests capture the bytes).
    pub fn to_writer(target: Option<usize>, verbose: u8, out: Box<dyn Write + Send>) -> Progbar {
        Progbar {
            target,
            verbose,
            start: Instant::now(),
            after_first: None,
            last_update: None,
            prev_width: 0,
            out,
        }
    }

    /// Sets the number of steps once it is known (Keras's `ProgbarLogger` does so at the end of
    /// an epoch over data of unknown size, so the last line reads `5/5` with a full bar).
    pub fn set_target(&mut self, target: Option<usize>) {
        self.target = target;
    }

    /// The number of steps, if known.
    pub fn target(&self) -> Option<usize> {
        self.target
    }

    /// Reports `current` steps done with these figures; `finalize` ends the line.
    pub fn update(&mut self, current: usize, values: &[(String, f64)], finalize: bool) {
        let now = Instant::now();
        if current == 1 || (current > 1 && self.after_first.is_none()) {
            self.after_first.get_or_insert(now);
        }
        if self.verbose == 0 {
            return;
        }
        if self.verbose == 2 && !finalize {
            return;
        }
        if !finalize {
            if let Some(last) = self.last_update {
                if now.duration_since(last).as_secs_f64() < 0.05 {
                    return;
                }
            }
        }
        self.last_update = Some(now);
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let per_step = self.time_per_step(current, now, elapsed);
        let line = if self.verbose == 1 {
            self.line_v1(current, values, finalize, elapsed, per_step)
        } else {
            self.line_v2(current, values, elapsed, per_step)
        };
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }

    fn time_per_step(&self, current: usize, now: Instant, elapsed: f64) -> f64 {
        match self.after_first {
            Some(t) if current > 1 => now.duration_since(t).as_secs_f64() / (current - 1) as f64,
            _ if current > 0 => elapsed / current as f64,
            _ => 0.0,
        }
    }

    fn line_v1(
        &mut self,
        current: usize,
        values: &[(String, f64)],
        finalize: bool,
        elapsed: f64,
        per_step: f64,
    ) -> String {
        let mut body = String::new();
        match self.target {
            Some(target) => {
                let ndigits = (target.max(1) as f64).log10() as usize + 1;
                let counter = format!("{current:>ndigits$}/{target}");
                body.push_str(&format!("\x1b[1m{counter}\x1b[0m "));
                let done = (20 * current / target.max(1)).min(20);
                let bar_done: String = "━".repeat(done);
                let bar_todo: String = "━".repeat(20 - done);
                body.push_str(&format!(
                    "\x1b[32m{bar_done}\x1b[0m\x1b[37m{bar_todo}\x1b[0m"
                ));
            }
            None => {
                let counter = format!("{current:>7}/Unknown");
                body.push_str(&format!("\x1b[1m{counter}\x1b[0m"));
            }
        }
        let time = if finalize {
            format!("{elapsed:.0}s")
        } else {
            match self.target {
                Some(t) => format_eta(per_step * t.saturating_sub(current) as f64),
                None => format!("{elapsed:.0}s"),
            }
        };
        body.push_str(&format!(" \x1b[1m{time}\x1b[0m"));
        let rest = format!(" {}{}", format_per_step(per_step), format_values(values));
        body.push_str(&rest);
        // Keras counts widths in characters including the colour codes, and moves back over the
        // previous line with backspaces before the carriage return.
        let width = body.chars().count();
        let mut line = "\u{8}".repeat(self.prev_width);
        line.push('\r');
        line.push_str(&body);
        line.push_str(&" ".repeat(self.prev_width.saturating_sub(width)));
        self.prev_width = width;
        if finalize {
            line.push('\n');
        }
        line
    }

    fn line_v2(
        &self,
        current: usize,
        values: &[(String, f64)],
        elapsed: f64,
        per_step: f64,
    ) -> String {
        let counter = match self.target {
            Some(t) => format!("{current}/{t}"),
            None => format!("{current}/Unknown"),
        };
        format!(
            "{counter} - {elapsed:.0}s - {}{}\n",
            format_per_step(per_step),
            format_values(values)
        )
    }
}

/// Keras's ETA: `%ds`, `%d:%02d`, or `%d:%02d:%02d`.
fn format_eta(eta: f64) -> String {
    let e = eta.max(0.0) as u64;
    if e >= 3600 {
        format!("{}:{:02}:{:02}", e / 3600, (e % 3600) / 60, e % 60)
    } else if e >= 60 {
        format!("{}:{:02}", e / 60, e % 60)
    } else {
        format!("{e}s")
    }
}

/// `12ms/step`, `3s/step` or `850us/step`.
fn format_per_step(t: f64) -> String {
    if t >= 1.0 {
        format!("{t:.0}s/step")
    } else if t >= 1e-3 {
        format!("{:.0}ms/step", t * 1e3)
    } else {
        format!("{:.0}us/step", t * 1e6)
    }
}

/// ` - loss: 0.2950 - accuracy: 0.9148` (scientific below 1e-3, as Keras).
pub(crate) fn format_values(values: &[(String, f64)]) -> String {
    values
        .iter()
        .map(|(k, v)| {
            if v.abs() > 1e-3 {
                format!(" - {k}: {v:.4}")
            } else {
                format!(" - {k}: {}", sci(*v))
            }
        })
        .collect()
}

/// Python's `{:.4e}`: `1.2346e-04`.
fn sci(v: f64) -> String {
    let s = format!("{v:.4e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn final_line_has_keras_layout() {
        let buf = Buf::default();
        let mut p = Progbar::to_writer(Some(150), 1, Box::new(buf.clone()));
        let logs = vec![
            ("accuracy".to_string(), 0.1065),
            ("loss".to_string(), 2.3053),
        ];
        p.update(150, &logs, true);
        let s = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(s.starts_with("\r\x1b[1m150/150\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m \x1b[1m0s\x1b[0m "), "{s:?}");
        assert!(
            s.ends_with("/step - accuracy: 0.1065 - loss: 2.3053\n"),
            "{s:?}"
        );
    }

    #[test]
    fn counter_is_right_aligned_and_bar_partial() {
        let buf = Buf::default();
        let mut p = Progbar::to_writer(Some(150), 1, Box::new(buf.clone()));
        p.update(5, &[], false);
        let s = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            s.starts_with(
                "\r\x1b[1m  5/150\x1b[0m \x1b[32m\x1b[0m\x1b[37m━━━━━━━━━━━━━━━━━━━━\x1b[0m"
            ),
            "{s:?}"
        );
    }

    #[test]
    fn values_format_like_python() {
        assert_eq!(
            format_values(&[("loss".into(), 0.00012345)]),
            " - loss: 1.2345e-04"
        );
        assert_eq!(
            format_values(&[("loss".into(), 2.30531)]),
            " - loss: 2.3053"
        );
        assert_eq!(format_eta(75.0), "1:15");
        assert_eq!(format_eta(3725.0), "1:02:05");
        assert_eq!(format_per_step(0.0072), "7ms/step");
    }
}
