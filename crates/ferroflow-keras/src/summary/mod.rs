//! `tf.summary`: TensorBoard event files for custom training loops, and a reader for them.
//!
//! [`SummaryWriter`] is `tf.summary.create_file_writer(logdir)` with the `scalar`, `histogram`,
//! `image` and `text` summaries, written as TF 2 writes them (tensors with plugin metadata), so
//! TensorBoard shows them as it shows TensorFlow's. [`read_events`] reads event files back (ours
//! or TensorFlow's), checking every record's CRCs. The Keras callback
//! [`crate::callbacks::TensorBoard`] is built on the writer.
//!
//! The summary writer lives in the Keras crate because the callback is its main user and the
//! crate already depends on `ferroflow-data`, whose TFRecord framing and CRC-32C it reuses; it has
//! no dependency on Keras's models and is re-exported as `ferroflow::summary`.
//!
//! ```
//! use ferroflow_core::Tensor;
//! use ferroflow_keras::summary::{event_files, read_events, EventKind, SummaryWriter};
//! let logdir = std::env::temp_dir().join(format!("ff-doc-tb-{}", std::process::id()));
//! let mut writer = SummaryWriter::create(&logdir)?;
//! for step in 0..10 {
//!     writer.scalar("loss", 1.0 / (1.0 + step as f64), step)?;
//! }
//! writer.histogram("weights", &Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 2.0], &[4])?, 0)?;
//! writer.text("notes", "**bold** text", 0)?;
//! writer.flush()?;
//! let events = read_events(&event_files(&logdir)?[0])?;
//! assert_eq!(events[0].kind, EventKind::FileVersion("brain.Event:2".into()));
//! # std::fs::remove_dir_all(&logdir).ok();
//! # Ok::<(), ferroflow_core::Error>(())
//! ```

pub mod proto;
mod reader;
mod writer;

pub use proto::{Event, EventKind, SummaryData, SummaryValue, TensorProto};
pub use reader::{event_files, read_events};
pub use writer::{histogram_buckets, SummaryWriter, DEFAULT_BUCKETS, DEFAULT_MAX_IMAGES};
