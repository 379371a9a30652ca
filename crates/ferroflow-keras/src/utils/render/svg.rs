//! A scene as SVG 1.1 text. Text is `<text>` in the font family `DejaVu Sans, Verdana,
//! sans-serif`; boxes were sized with DejaVu Sans's advance widths.

use std::fmt::Write;

use super::{Anchor, Item, Scene};

/// XML text escaping.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn points(pts: &[(f32, f32)]) -> String {
    pts.iter()
        .map(|(x, y)| format!("{x:.2},{y:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn render(scene: &Scene) -> String {
    let (w, h) = (scene.width, scene.height);
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w:.0}pt" height="{h:.0}pt" viewBox="0 0 {w:.2} {h:.2}" font-family="DejaVu Sans, Verdana, sans-serif">"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{w:.2}" height="{h:.2}" fill="#ffffff"/>"##
    );
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
                let fill = fill.map_or("none".to_string(), |c| c.hex());
                let stroke = stroke.map_or(String::new(), |(c, sw)| {
                    format!(r#" stroke="{}" stroke-width="{sw:.2}""#, c.hex())
                });
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" fill="{fill}"{stroke}/>"#
                );
            }
            Item::Line {
                points: pts,
                color,
                width,
                dash,
            } => {
                let dash = dash.map_or(String::new(), |[a, b]| {
                    format!(r#" stroke-dasharray="{a:.2},{b:.2}""#)
                });
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width:.2}" stroke-linejoin="round" stroke-linecap="round"{dash}/>"#,
                    points(pts),
                    color.hex()
                );
            }
            Item::Polygon { points: pts, fill } => {
                let _ = writeln!(
                    s,
                    r#"<polygon points="{}" fill="{}"/>"#,
                    points(pts),
                    fill.hex()
                );
            }
            Item::Circle { cx, cy, r, fill } => {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{cx:.2}" cy="{cy:.2}" r="{r:.2}" fill="{}"/>"#,
                    fill.hex()
                );
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
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let rotate = if *vertical {
                    format!(r#" transform="rotate(-90 {x:.2} {y:.2})""#)
                } else {
                    String::new()
                };
                let body: String = spans
                    .iter()
                    .map(|sp| {
                        if sp.bold {
                            format!(r#"<tspan font-weight="bold">{}</tspan>"#, escape(&sp.text))
                        } else {
                            format!("<tspan>{}</tspan>", escape(&sp.text))
                        }
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    r#"<text x="{x:.2}" y="{y:.2}" font-size="{size:.2}" fill="{}" text-anchor="{anchor}" xml:space="preserve"{rotate}>{body}</text>"#,
                    color.hex()
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}
