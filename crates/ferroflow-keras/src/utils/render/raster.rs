//! A scene rasterized with `tiny-skia` (anti-aliased fills and strokes) and encoded as an RGB
//! PNG with `image`. Glyphs are filled from their outlines (non-zero winding), so the PNG needs
//! no system font and no Graphviz.

use ab_glyph::OutlineCurve;
use ferroflow_core::{Error, Result};
use tiny_skia::{
    FillRule, LineCap, LineJoin, Paint, Path, PathBuilder, Pixmap, Rect, Stroke, StrokeDash,
    Transform,
};

use super::{font, spans_width, Anchor, Color, Item, Scene};

/// The largest picture side, in pixels (a guard against absurd `dpi`s).
const MAX_SIDE: f32 = 16384.0;

fn paint(c: Color) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color_rgba8(c.0, c.1, c.2, 255);
    p.anti_alias = true;
    p
}

fn polyline(points: &[(f32, f32)], close: bool) -> Option<Path> {
    let mut pb = PathBuilder::new();
    let (&(x0, y0), rest) = points.split_first()?;
    pb.move_to(x0, y0);
    for &(x, y) in rest {
        pb.line_to(x, y);
    }
    if close {
        pb.close();
    }
    pb.finish()
}

/// The outlines of a text run starting at `(x, baseline)`, in scene units.
fn text_path(pb: &mut PathBuilder, text: &str, size: f32, bold: bool, x: f32, baseline: f32) {
    font::for_each_glyph(text, size, bold, |curves, pen, s| {
        let p = |q: ab_glyph::Point| (x + pen + q.x * s, baseline - q.y * s);
        let mut last: Option<(f32, f32)> = None;
        for c in curves {
            let start = match c {
                OutlineCurve::Line(a, _)
                | OutlineCurve::Quad(a, _, _)
                | OutlineCurve::Cubic(a, _, _, _) => p(*a),
            };
            if last != Some(start) {
                if last.is_some() {
                    pb.close();
                }
                pb.move_to(start.0, start.1);
            }
            let end = match c {
                OutlineCurve::Line(_, b) => {
                    let b = p(*b);
                    pb.line_to(b.0, b.1);
                    b
                }
                OutlineCurve::Quad(_, c1, b) => {
                    let (c1, b) = (p(*c1), p(*b));
                    pb.quad_to(c1.0, c1.1, b.0, b.1);
                    b
                }
                OutlineCurve::Cubic(_, c1, c2, b) => {
                    let (c1, c2, b) = (p(*c1), p(*c2), p(*b));
                    pb.cubic_to(c1.0, c1.1, c2.0, c2.1, b.0, b.1);
                    b
                }
            };
            last = Some(end);
        }
        if last.is_some() {
            pb.close();
        }
    });
}

pub(super) fn render_png(scene: &Scene, scale: f32) -> Result<Vec<u8>> {
    let pw = (scene.width * scale).ceil();
    let ph = (scene.height * scale).ceil();
    if !(pw >= 1.0 && ph >= 1.0 && pw <= MAX_SIDE && ph <= MAX_SIDE) {
        return Err(Error::invalid(
            "render",
            format!(
                "a {pw}×{ph} pixel picture is out of range (1 to {MAX_SIDE} pixels a side); lower the dpi"
            ),
        ));
    }
    let (pw, ph) = (pw as u32, ph as u32);
    let mut pixmap = Pixmap::new(pw, ph)
        .ok_or_else(|| Error::invalid("render", format!("cannot allocate {pw}×{ph} pixels")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    let base = Transform::from_scale(scale, scale);
    for item in &scene.items {
        match item {
            Item::Rect {
                x,
                y,
                w,
                h,
                fill,
                stroke,
            } => {
                let Some(rect) = Rect::from_xywh(*x, *y, w.max(0.01), h.max(0.01)) else {
                    continue;
                };
                let path = PathBuilder::from_rect(rect);
                if let Some(c) = fill {
                    pixmap.fill_path(&path, &paint(*c), FillRule::Winding, base, None);
                }
                if let Some((c, width)) = stroke {
                    let stroke = Stroke {
                        width: *width,
                        ..Stroke::default()
                    };
                    pixmap.stroke_path(&path, &paint(*c), &stroke, base, None);
                }
            }
            Item::Line {
                points,
                color,
                width,
                dash,
            } => {
                let Some(path) = polyline(points, false) else {
                    continue;
                };
                let stroke = Stroke {
                    width: *width,
                    line_cap: LineCap::Round,
                    line_join: LineJoin::Round,
                    dash: dash.and_then(|[a, b]| StrokeDash::new(vec![a, b], 0.0)),
                    ..Stroke::default()
                };
                pixmap.stroke_path(&path, &paint(*color), &stroke, base, None);
            }
            Item::Polygon { points, fill } => {
                if let Some(path) = polyline(points, true) {
                    pixmap.fill_path(&path, &paint(*fill), FillRule::Winding, base, None);
                }
            }
            Item::Circle { cx, cy, r, fill } => {
                if let Some(path) = PathBuilder::from_circle(*cx, *cy, *r) {
                    pixmap.fill_path(&path, &paint(*fill), FillRule::Winding, base, None);
                }
            }
            Item::Text {
                x,
                y,
                spans,
                size,
                color,
                anchor,
                vertical,
            } => {
                let width = spans_width(spans, *size);
                let start = match anchor {
                    Anchor::Start => 0.0,
                    Anchor::Middle => -width / 2.0,
                    Anchor::End => -width,
                };
                // Lay the text out at the origin, then move (and turn) it into place.
                let mut pb = PathBuilder::new();
                let mut pen = start;
                for sp in spans {
                    text_path(&mut pb, &sp.text, *size, sp.bold, pen, 0.0);
                    pen += font::text_width(&sp.text, *size, sp.bold);
                }
                let Some(path) = pb.finish() else {
                    continue;
                };
                let mut t = Transform::from_translate(*x, *y);
                if *vertical {
                    t = t.pre_concat(Transform::from_rotate(-90.0));
                }
                pixmap.fill_path(
                    &path,
                    &paint(*color),
                    FillRule::Winding,
                    base.pre_concat(t),
                    None,
                );
            }
        }
    }
    // Opaque white background: premultiplied RGBA is plain RGBA; keep RGB.
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let img = image::RgbImage::from_raw(pw, ph, rgb)
        .ok_or_else(|| Error::invalid("render", "internal: pixel buffer size"))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::invalid("render", format!("PNG encoding failed: {e}")))?;
    Ok(out.into_inner())
}
