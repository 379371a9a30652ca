//! A small 2-D scene (boxes, lines, polygons, circles, text) drawn two ways: as SVG text and as
//! a PNG rasterized in pure Rust (`tiny-skia` paints the shapes, `ab_glyph` gives the glyph
//! outlines of the bundled DejaVu Sans subset). `plot_model` and the training curves both draw
//! into a [`Scene`], so the SVG and the PNG of one figure show the same thing.
//!
//! Units are points (1/72 inch), as in Graphviz; a PNG at `dpi` is `dpi / 72` pixels a point.

mod font;
mod raster;
mod svg;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ferroflow_core::{Error, Result};

pub(crate) use font::text_width;

/// An RGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Color(pub u8, pub u8, pub u8);

impl Color {
    pub(crate) const BLACK: Color = Color(0, 0, 0);
    pub(crate) const WHITE: Color = Color(255, 255, 255);

    /// `#rrggbb`.
    pub(crate) fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// Where a text's `x` is: its start, middle or end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// One run of text in one style.
#[derive(Clone, Debug)]
pub(crate) struct Span {
    pub text: String,
    pub bold: bool,
}

impl Span {
    pub(crate) fn new(text: impl Into<String>, bold: bool) -> Span {
        Span {
            text: text.into(),
            bold,
        }
    }
}

/// The width of spans of text at `size` points.
pub(crate) fn spans_width(spans: &[Span], size: f32) -> f32 {
    spans
        .iter()
        .map(|s| text_width(&s.text, size, s.bold))
        .sum()
}

/// One thing to draw.
#[derive(Clone, Debug)]
pub(crate) enum Item {
    /// A rectangle (top-left corner, size), filled and/or outlined.
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        fill: Option<Color>,
        stroke: Option<(Color, f32)>,
    },
    /// An open polyline.
    Line {
        points: Vec<(f32, f32)>,
        color: Color,
        width: f32,
        dash: Option<[f32; 2]>,
    },
    /// A filled polygon.
    Polygon {
        points: Vec<(f32, f32)>,
        fill: Color,
    },
    /// A filled circle.
    Circle {
        cx: f32,
        cy: f32,
        r: f32,
        fill: Color,
    },
    /// Text on a baseline at `(x, y)`, turned 90° counter-clockwise when `vertical`.
    Text {
        x: f32,
        y: f32,
        spans: Vec<Span>,
        size: f32,
        color: Color,
        anchor: Anchor,
        vertical: bool,
    },
}

/// A picture `width × height` points on a white background.
#[derive(Clone, Debug)]
pub(crate) struct Scene {
    pub width: f32,
    pub height: f32,
    pub items: Vec<Item>,
}

impl Scene {
    pub(crate) fn new(width: f32, height: f32) -> Scene {
        Scene {
            width,
            height,
            items: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, item: Item) {
        self.items.push(item);
    }

    /// Text in one style.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn text(
        &mut self,
        x: f32,
        y: f32,
        text: &str,
        size: f32,
        bold: bool,
        color: Color,
        anchor: Anchor,
    ) {
        self.push(Item::Text {
            x,
            y,
            spans: vec![Span::new(text, bold)],
            size,
            color,
            anchor,
            vertical: false,
        });
    }

    /// A straight line.
    pub(crate) fn line(&mut self, a: (f32, f32), b: (f32, f32), color: Color, width: f32) {
        self.push(Item::Line {
            points: vec![a, b],
            color,
            width,
            dash: None,
        });
    }

    /// The scene as an SVG document.
    pub(crate) fn to_svg(&self) -> String {
        svg::render(self)
    }

    /// The scene as PNG bytes at `dpi` (72 = one pixel a point).
    pub(crate) fn to_png(&self, dpi: f32) -> Result<Vec<u8>> {
        raster::render_png(self, dpi / 72.0)
    }
}

/// The output formats, chosen by a path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Png,
    Svg,
    Dot,
}

/// The format of `path` from its extension (case-insensitive); `dot` says whether Graphviz DOT
/// (`.dot`, `.gv`) is accepted. No extension means PNG, as in Keras's `plot_model`.
pub(crate) fn format_of(op: &str, path: &Path, dot: bool) -> Result<Format> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        None | Some("png") => Ok(Format::Png),
        Some("svg") => Ok(Format::Svg),
        Some("dot") | Some("gv") if dot => Ok(Format::Dot),
        Some(other) => Err(Error::invalid(
            op,
            format!(
                "{}: unsupported file extension {other:?}; use {}",
                path.display(),
                if dot {
                    ".png, .svg or .dot"
                } else {
                    ".png or .svg"
                }
            ),
        )),
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed and synced, then
/// renamed over it (a reader never sees half a picture; a failed write leaves no temporary file).
/// A missing parent directory is an error naming it, as Keras's `plot_model` (Graphviz cannot
/// open the file) — directories are not created behind the user's back.
pub(crate) fn write_atomic(op: &str, path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |what: &str, e: &dyn std::fmt::Display| {
        Error::invalid(op, format!("{}: {what}: {e}", path.display()))
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::invalid(
            op,
            format!(
                "{}: the directory {} does not exist",
                path.display(),
                dir.display()
            ),
        ));
    }
    let name = path
        .file_name()
        .ok_or_else(|| err("cannot write", &"not a file name"))?
        .to_string_lossy()
        .into_owned();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| err("cannot create", &e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| err("cannot write", &e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| err("cannot rename onto", &e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a scene to `path` as PNG (at `dpi`) or SVG, by extension.
pub(crate) fn write_scene(op: &str, path: &Path, scene: &Scene, dpi: f32) -> Result<()> {
    let bytes = match format_of(op, path, false)? {
        Format::Svg => scene.to_svg().into_bytes(),
        _ => scene.to_png(dpi)?,
    };
    write_atomic(op, path, &bytes)
}
