//! [`SummaryWriter`]: `tf.summary.create_file_writer` and the `tf.summary.*` ops.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferroflow_core::{ops, DType, Error, Result, Tensor};
use ferroflow_data::io::frame_record;

use super::proto::{Event, EventKind, SummaryData, SummaryValue, TensorProto};

/// TensorFlow's default `max_queue`: pending events before a flush.
const MAX_QUEUE: usize = 10;
/// TensorFlow's default `flush_millis` (120 s).
const FLUSH_EVERY: Duration = Duration::from_secs(120);
/// `tf.summary.histogram`'s default bucket count (also what Keras's callback uses).
pub const DEFAULT_BUCKETS: usize = 30;
/// `tf.summary.image`'s default `max_outputs`.
pub const DEFAULT_MAX_IMAGES: usize = 3;

/// Writers created by this process (the `<counter>` of the file name, as TF numbers them).
static WRITERS: AtomicU64 = AtomicU64::new(0);

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's host name (`/proc/sys/kernel/hostname`, `/etc/hostname`, `$HOSTNAME`,
/// `$COMPUTERNAME`, else `localhost`), as TF puts it in event file names.
fn hostname() -> String {
    let from_file = |p: &str| std::fs::read_to_string(p).ok();
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(['/', '\\']))
        .unwrap_or_else(|| "localhost".into())
}

/// Writes TensorBoard event files: `tf.summary.create_file_writer(logdir)` and the summary ops
/// `scalar`, `histogram`, `image` and `text`, in TF 2's format (what TensorBoard 2 reads).
///
/// The file is `<logdir>/events.out.tfevents.<unix seconds, 10 digits>.<hostname>.<pid>.<n>.v2`
/// (TF 2's name; `n` counts the writers this process created). It is a TFRecord stream of
/// `tensorflow.Event` messages, the first one `file_version: "brain.Event:2"`. Summaries:
/// - `histogram`: as TF 2, a `DT_DOUBLE` `[k, 3]` tensor of `(left edge, right edge, count)`
///   rows, plugin `histograms`, with TF's bucketing (k equal-width buckets from min to max);
/// - `image`: as TF 2, a `DT_STRING` vector `[width, height, png...]`, plugin `images`;
/// - `text`: as TF 2, a `DT_STRING` scalar, plugin `text` (TensorBoard renders Markdown);
/// - `scalar`: a float32 `simple_value` — TF 1's field, not TF 2's `DT_FLOAT` scalar tensor
///   with plugin `scalars`. TensorBoard converts `simple_value` to exactly that tensor when
///   loading (`data_compat`), so its Scalars dashboard shows the same; and unlike TF 2's tensor,
///   `simple_value` is also a scalar for the older readers scripts use
///   (`event_accumulator.EventAccumulator(...).Scalars(tag)`, which lists TF 2's scalars
///   under `tensors`).
///
/// An event file is an append-only log, so it is not written atomically: events are buffered
/// and flushed, as TF does, every 10 events, every 120 s, on [`SummaryWriter::flush`] and when
/// the writer is dropped.
///
/// ```
/// use ferroflow_keras::summary::{read_events, SummaryWriter};
/// let dir = std::env::temp_dir().join(format!("ff-doc-summary-{}", std::process::id()));
/// let mut w = SummaryWriter::create(&dir)?;
/// for step in 0..3 {
///     w.scalar("loss", 1.0 / (step as f64 + 1.0), step)?;
/// }
/// w.flush()?;
/// let events = read_events(w.path())?;
/// assert_eq!(events.len(), 4); // the file-version event, then one per scalar
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub struct SummaryWriter {
    path: PathBuf,
    file: BufWriter<File>,
    pending: usize,
    last_flush: Instant,
}

impl std::fmt::Debug for SummaryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SummaryWriter")
            .field("path", &self.path)
            .finish()
    }
}

impl SummaryWriter {
    /// `tf.summary.create_file_writer(logdir)`: creates `logdir` (and its parents) and a new
    /// event file in it, and writes the file-version event. A directory that cannot be created
    /// or written is an error naming it.
    pub fn create(logdir: impl AsRef<Path>) -> Result<SummaryWriter> {
        let logdir = logdir.as_ref();
        std::fs::create_dir_all(logdir).map_err(|e| {
            Error::invalid(
                "SummaryWriter",
                format!("cannot create the log directory {}: {e}", logdir.display()),
            )
        })?;
        let now = wall_time();
        let name = format!(
            "events.out.tfevents.{:010}.{}.{}.{}.v2",
            now as u64,
            hostname(),
            std::process::id(),
            WRITERS.fetch_add(1, Ordering::Relaxed)
        );
        let path = logdir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                Error::invalid(
                    "SummaryWriter",
                    format!("cannot create the event file {}: {e}", path.display()),
                )
            })?;
        let mut w = SummaryWriter {
            path,
            file: BufWriter::new(file),
            pending: 0,
            last_flush: Instant::now(),
        };
        // TF writes an integral wall time on the file-version event.
        w.write_event(&Event {
            wall_time: now.floor(),
            step: 0,
            kind: EventKind::FileVersion("brain.Event:2".into()),
        })?;
        w.flush()?;
        Ok(w)
    }

    /// The event file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_err(&self, e: std::io::Error) -> Error {
        Error::invalid(
            "SummaryWriter",
            format!("cannot write the event file {}: {e}", self.path.display()),
        )
    }

    /// Appends one event (flushing as TF does: every 10 events or 120 s).
    pub fn write_event(&mut self, event: &Event) -> Result<()> {
        let rec = frame_record(&event.encode());
        self.file.write_all(&rec).map_err(|e| self.io_err(e))?;
        self.pending += 1;
        if self.pending >= MAX_QUEUE || self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends a summary event holding `values` at `step`.
    pub fn write_summary(&mut self, values: Vec<SummaryValue>, step: i64) -> Result<()> {
        self.write_event(&Event {
            wall_time: wall_time(),
            step,
            kind: EventKind::Summary(values),
        })
    }

    /// `tf.summary.scalar(tag, value, step)`: a float32 in `simple_value` (see the type's docs
    /// for why not TF 2's scalar tensor).
    pub fn scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<()> {
        let v = SummaryValue {
            tag: tag.into(),
            plugin_name: String::new(),
            plugin_content: Vec::new(),
            data: SummaryData::Simple(value as f32),
        };
        self.write_summary(vec![v], step)
    }

    /// `tf.summary.histogram(tag, data, step)` with TF's 30 buckets.
    pub fn histogram(&mut self, tag: &str, data: &Tensor, step: i64) -> Result<()> {
        self.histogram_buckets(tag, data, step, DEFAULT_BUCKETS)
    }

    /// `tf.summary.histogram(tag, data, step, buckets)`: see [`histogram_buckets`].
    pub fn histogram_buckets(
        &mut self,
        tag: &str,
        data: &Tensor,
        step: i64,
        buckets: usize,
    ) -> Result<()> {
        let values = ops::cast(data, DType::F64)
            .and_then(|t| t.to_vec::<f64>())
            .map_err(|e| Error::invalid("summary.histogram", format!("{tag}: {e}")))?;
        let rows = histogram_buckets(&values, buckets);
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let t = TensorProto::doubles(&[rows.len() as i64, 3], &flat);
        self.write_summary(vec![SummaryValue::tensor(tag, "histograms", &[], t)], step)
    }

    /// `tf.summary.image(tag, data, step)`: up to 3 images of an NHWC tensor (1, 3 or 4
    /// channels), PNG-encoded.
    pub fn image(&mut self, tag: &str, data: &Tensor, step: i64) -> Result<()> {
        self.image_max_outputs(tag, data, step, DEFAULT_MAX_IMAGES)
    }

    /// `tf.summary.image(tag, data, step, max_outputs)`. `uint8` pixels are taken as they are;
    /// float pixels are in `[0, 1]` and converted as `tf.image.convert_image_dtype(...,
    /// saturate=True)` does: `trunc(clamp(x · 255.5, 0, 255))`.
    pub fn image_max_outputs(
        &mut self,
        tag: &str,
        data: &Tensor,
        step: i64,
        max_outputs: usize,
    ) -> Result<()> {
        let shape = data.shape().to_vec();
        if shape.len() != 4 || ![1, 3, 4].contains(&shape[3]) {
            return Err(Error::shape(
                "summary.image",
                format!("{tag}: expected an NHWC batch with 1, 3 or 4 channels"),
                &[&shape],
            ));
        }
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3]);
        let pixels: Vec<u8> = match data.dtype() {
            DType::U8 => data.to_vec::<u8>()?,
            DType::F16 | DType::BF16 | DType::F32 | DType::F64 => ops::cast(data, DType::F64)?
                .to_vec::<f64>()?
                .into_iter()
                .map(|x| (x * 255.5).clamp(0.0, 255.0) as u8)
                .collect(),
            d => {
                return Err(Error::invalid(
                    "summary.image",
                    format!("{tag}: images must be uint8 or float, got {d:?}"),
                ))
            }
        };
        let mut strings = vec![w.to_string().into_bytes(), h.to_string().into_bytes()];
        let per = h * w * c;
        for i in 0..n.min(max_outputs) {
            strings.push(encode_png(&pixels[i * per..(i + 1) * per], w, h, c)?);
        }
        let t = TensorProto::strings(strings, false);
        self.write_summary(vec![SummaryValue::tensor(tag, "images", &[], t)], step)
    }

    /// `tf.summary.text(tag, data, step)`: a string (Markdown in TensorBoard).
    pub fn text(&mut self, tag: &str, text: &str, step: i64) -> Result<()> {
        let t = TensorProto::strings(vec![text.as_bytes().to_vec()], true);
        self.write_summary(vec![SummaryValue::tensor(tag, "text", &[], t)], step)
    }

    /// Writes buffered events to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| self.io_err(e))?;
        self.pending = 0;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Flushes and closes the file.
    pub fn close(mut self) -> Result<()> {
        self.flush()
    }
}

impl Drop for SummaryWriter {
    fn drop(&mut self) {
        // Best effort: `close`/`flush` report errors.
        let _ = self.file.flush();
    }
}

fn encode_png(pixels: &[u8], w: usize, h: usize, c: usize) -> Result<Vec<u8>> {
    use image::ImageEncoder;
    let color = match c {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        _ => image::ExtendedColorType::Rgba8,
    };
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(pixels, w as u32, h as u32, color)
        .map_err(|e| Error::invalid("summary.image", format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// TensorBoard's histogram buckets (`tensorboard.plugins.histogram.summary_v2`): `buckets` rows
/// `[left edge, right edge, count]` of equal width from the minimum to the maximum (a value is
/// in bucket `floor((x - min) / width)`, the maximum in the last); all rows `[v, v, 0]` but the
/// last `[v, v, n]` when every value is `v`; all zeros for no data. NaNs are left out.
pub fn histogram_buckets(values: &[f64], buckets: usize) -> Vec<[f64; 3]> {
    if buckets == 0 {
        return Vec::new();
    }
    let values: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if values.is_empty() {
        return vec![[0.0; 3]; buckets];
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = max - min;
    if range == 0.0 {
        let mut rows = vec![[max, max, 0.0]; buckets];
        rows[buckets - 1][2] = values.len() as f64;
        return rows;
    }
    let width = range / buckets as f64;
    let mut counts = vec![0.0; buckets];
    for &x in &values {
        let i = ((x - min) / width).floor();
        let i = if i.is_nan() || i < 0.0 {
            0
        } else {
            (i as usize).min(buckets - 1)
        };
        counts[i] += 1.0;
    }
    let edge = |i: usize| {
        if i == buckets {
            max
        } else {
            min + range * i as f64 / buckets as f64
        }
    };
    (0..buckets)
        .map(|i| [edge(i), edge(i + 1), counts[i]])
        .collect()
}
