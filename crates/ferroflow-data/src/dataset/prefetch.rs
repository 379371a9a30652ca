//! `prefetch`: a background thread that runs the pipeline ahead of the consumer.

use std::sync::mpsc::{sync_channel, Receiver};
use std::thread::JoinHandle;

use ferroflow_core::Result;

use super::{Dataset, AUTOTUNE};
use crate::element::Element;

/// The buffer `prefetch(AUTOTUNE)` uses.
const AUTOTUNE_BUFFER: usize = 2;

impl Dataset {
    /// `Dataset.prefetch(buffer_size)`: each pass runs the input pipeline on a background
    /// thread that stays up to `buffer_size` elements ahead of the consumer (a bounded
    /// channel; `0` hands each element over directly, [`AUTOTUNE`] uses 2). The elements and
    /// errors come out in the same order as without prefetching. Dropping the pass's iterator
    /// stops the thread (after the element it is computing) and waits for it.
    ///
    /// Work done on the background thread does not see the consumer's thread-local state
    /// (e.g. a recording `GradientTape`), as in TF where the input pipeline runs outside the
    /// training step.
    ///
    /// ```
    /// use ferroflow_data::Dataset;
    /// let ds = Dataset::range(100).batch(10, false).prefetch(2);
    /// let firsts: Vec<i64> = ds
    ///     .iter()
    ///     .map(|b| Ok(b?.tensor()?.to_vec::<i64>()?[0]))
    ///     .collect::<ferroflow_core::Result<_>>()?;
    /// assert_eq!(firsts, (0..10).map(|i| i * 10).collect::<Vec<_>>());
    /// # Ok::<(), ferroflow_core::Error>(())
    /// ```
    pub fn prefetch(&self, buffer_size: usize) -> Dataset {
        let input = self.clone();
        let bound = if buffer_size == AUTOTUNE {
            AUTOTUNE_BUFFER
        } else {
            buffer_size
        };
        Dataset::from_source(
            move || {
                let (tx, rx) = sync_channel::<Result<Element>>(bound);
                let input = input.clone();
                let spawned = std::thread::Builder::new()
                    .name("ferroflow-prefetch".into())
                    .spawn(move || {
                        for x in input.iter() {
                            if tx.send(x).is_err() {
                                break; // the consumer dropped its iterator
                            }
                        }
                    });
                match spawned {
                    Ok(handle) => Box::new(Prefetch {
                        rx: Some(rx),
                        handle: Some(handle),
                    }),
                    Err(e) => Box::new(std::iter::once(Err(ferroflow_core::Error::invalid(
                        "prefetch",
                        format!("could not start the prefetch thread: {e}"),
                    )))),
                }
            },
            self.cardinality,
        )
    }
}

/// One pass of `prefetch`: the receiving end of the background thread's channel.
struct Prefetch {
    rx: Option<Receiver<Result<Element>>>,
    handle: Option<JoinHandle<()>>,
}

impl Iterator for Prefetch {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        match self.rx.as_ref()?.recv() {
            Ok(x) => Some(x),
            Err(_) => {
                // The thread finished its pass (or panicked: report it instead of ending early).
                self.rx = None;
                let handle = self.handle.take()?;
                match handle.join() {
                    Ok(()) => None,
                    Err(_) => Some(Err(ferroflow_core::Error::invalid(
                        "prefetch",
                        "the input pipeline panicked on the prefetch thread",
                    ))),
                }
            }
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Disconnect first so a thread blocked on a full channel wakes up and exits.
        drop(self.rx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
