//! Training curves: one panel per figure (`loss`, `accuracy`, ...), the training values and
//! their `val_` counterparts in the same panel, with a title, axis labels, a grid and a legend —
//! what Keras users draw with matplotlib from `history.history`. Drawn into a
//! [`Scene`](super::render::Scene), written as PNG or SVG by extension.
//!
//! The x axis counts epochs from 1, as `fit`'s progress bar does (`Epoch 1/5`); `History` and
//! `CSVLogger` number them from 0. Missing values (`NA` in a CSV, NaN) leave gaps.

use std::collections::BTreeMap;
use std::path::Path;

use ferroflow_core::{Error, Result};

use super::render::{text_width, write_scene, Anchor, Color, Item, Scene, Span};
use crate::callbacks::History;

/// The training series' colour (matplotlib's `tab:blue`).
const TRAIN: Color = Color(31, 119, 180);
/// The validation series' colour (matplotlib's `tab:orange`).
const VAL: Color = Color(255, 127, 14);
const GRID: Color = Color(225, 225, 225);
const AXIS: Color = Color(60, 60, 60);
const PANEL_W: f32 = 380.0;
const PANEL_H: f32 = 270.0;
const LEFT: f32 = 62.0;
const RIGHT: f32 = 16.0;
const TOP: f32 = 30.0;
const BOTTOM: f32 = 42.0;
const TITLE_H: f32 = 34.0;
/// PNG resolution: 2 pixels a point.
pub(crate) const CURVES_DPI: f32 = 144.0;

/// One panel: a figure name and its training / validation series.
struct Panel {
    name: String,
    train: Option<Vec<f64>>,
    val: Option<Vec<f64>>,
}

/// Groups `history` keys into panels: `loss` first, then the other figures by name; `val_x`
/// joins `x`'s panel (or has its own when `x` was not logged).
fn panels(history: &BTreeMap<String, Vec<f64>>) -> Vec<Panel> {
    let mut names: Vec<String> = Vec::new();
    for k in history.keys() {
        let base = k.strip_prefix("val_").unwrap_or(k).to_string();
        if !names.contains(&base) {
            names.push(base);
        }
    }
    names.sort_by(|a, b| (a != "loss").cmp(&(b != "loss")).then(a.cmp(b)));
    names
        .into_iter()
        .map(|name| Panel {
            train: history.get(&name).cloned(),
            val: history.get(&format!("val_{name}")).cloned(),
            name,
        })
        .collect()
}

/// 1, 2 or 5 times a power of ten, near `range / target`.
fn nice_step(range: f64, target: f64) -> f64 {
    let raw = (range / target).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Tick values in `[lo, hi]` at multiples of `step`.
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut t = (lo / step).ceil() * step;
    while t <= hi + step * 1e-9 && out.len() < 100 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// Draws the figure for `history` (keys → one value per epoch) at epochs `epochs` (0-based).
pub(crate) fn history_scene(
    history: &BTreeMap<String, Vec<f64>>,
    epochs: &[usize],
    title: Option<&str>,
) -> Result<Scene> {
    let ps = panels(history);
    let n_epochs = history.values().map(Vec::len).max().unwrap_or(0);
    if ps.is_empty() || n_epochs == 0 {
        return Err(Error::invalid(
            "plot_history",
            "the history is empty: nothing to plot (run fit first, or check the CSV has rows)",
        ));
    }
    // x values: the recorded epochs (1-based) where known, else 1..=n.
    let xs: Vec<f64> = (0..n_epochs)
        .map(|i| epochs.get(i).map_or(i + 1, |e| e + 1) as f64)
        .collect();
    let cols = if ps.len() == 1 {
        1
    } else if ps.len() <= 4 {
        2
    } else {
        3
    };
    let rows = ps.len().div_ceil(cols);
    let title_h = if title.is_some() { TITLE_H } else { 6.0 };
    let mut scene = Scene::new(
        PANEL_W * cols as f32 + 8.0,
        title_h + PANEL_H * rows as f32 + 4.0,
    );
    if let Some(t) = title {
        scene.text(
            scene.width / 2.0,
            24.0,
            t,
            15.0,
            true,
            Color::BLACK,
            Anchor::Middle,
        );
    }
    for (i, p) in ps.iter().enumerate() {
        let ox = 4.0 + PANEL_W * (i % cols) as f32;
        let oy = title_h + PANEL_H * (i / cols) as f32;
        draw_panel(&mut scene, p, &xs, ox, oy);
    }
    Ok(scene)
}

fn draw_panel(scene: &mut Scene, p: &Panel, xs: &[f64], ox: f32, oy: f32) {
    let (px, py) = (ox + LEFT, oy + TOP);
    let (pw, ph) = (PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    scene.text(
        px + pw / 2.0,
        oy + 20.0,
        &p.name,
        13.0,
        true,
        Color::BLACK,
        Anchor::Middle,
    );
    // Ranges.
    let vals = p
        .train
        .iter()
        .chain(p.val.iter())
        .flat_map(|v| v.iter().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let d = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            1.0
        };
        lo -= d;
        hi += d;
    }
    let pad = (hi - lo) * 0.06;
    let (lo, hi) = (lo - pad, hi + pad);
    let (x_lo, x_hi) = match (xs.first(), xs.last()) {
        (Some(&a), Some(&b)) if b > a => (a, b),
        (Some(&a), _) => (a - 1.0, a + 1.0),
        _ => (0.0, 1.0),
    };
    let xpad = (x_hi - x_lo) * 0.03;
    let (x_lo, x_hi) = (x_lo - xpad, x_hi + xpad);
    let sx = |x: f64| px + ((x - x_lo) / (x_hi - x_lo)) as f32 * pw;
    let sy = |y: f64| py + ph - ((y - lo) / (hi - lo)) as f32 * ph;

    // Grid and ticks.
    let ystep = nice_step(hi - lo, 5.0);
    for t in ticks(lo, hi, ystep) {
        let y = sy(t);
        scene.line((px, y), (px + pw, y), GRID, 0.8);
        scene.line((px - 4.0, y), (px, y), AXIS, 1.0);
        scene.text(
            px - 7.0,
            y + 3.5,
            &tick_label(t, ystep),
            10.0,
            false,
            AXIS,
            Anchor::End,
        );
    }
    let xstep = nice_step(x_hi - x_lo, 8.0).max(1.0).round();
    for t in ticks(x_lo.ceil(), x_hi, xstep) {
        let x = sx(t);
        scene.line((x, py), (x, py + ph), GRID, 0.8);
        scene.line((x, py + ph), (x, py + ph + 4.0), AXIS, 1.0);
        scene.text(
            x,
            py + ph + 15.0,
            &format!("{t:.0}"),
            10.0,
            false,
            AXIS,
            Anchor::Middle,
        );
    }
    scene.push(Item::Rect {
        x: px,
        y: py,
        w: pw,
        h: ph,
        fill: None,
        stroke: Some((AXIS, 1.0)),
    });
    scene.text(
        px + pw / 2.0,
        py + ph + 32.0,
        "epoch",
        11.0,
        false,
        Color::BLACK,
        Anchor::Middle,
    );
    scene.push(Item::Text {
        x: ox + 14.0,
        y: py + ph / 2.0,
        spans: vec![Span::new(p.name.clone(), false)],
        size: 11.0,
        color: Color::BLACK,
        anchor: Anchor::Middle,
        vertical: true,
    });

    // Series.
    let markers = xs.len() <= 60;
    let mut legend: Vec<(&str, Color, bool)> = Vec::new();
    for (series, color, label, dashed) in [
        (&p.train, TRAIN, "train", false),
        (&p.val, VAL, "validation", true),
    ] {
        let Some(vs) = series else { continue };
        legend.push((label, color, dashed));
        let mut run: Vec<(f32, f32)> = Vec::new();
        let flush = |run: &mut Vec<(f32, f32)>, scene: &mut Scene| {
            if run.len() > 1 {
                scene.push(Item::Line {
                    points: std::mem::take(run),
                    color,
                    width: 2.0,
                    dash: dashed.then_some([6.0, 4.0]),
                });
            }
            run.clear();
        };
        for (x, v) in xs.iter().zip(vs) {
            if v.is_finite() {
                run.push((sx(*x), sy(*v)));
            } else {
                flush(&mut run, scene);
            }
        }
        flush(&mut run, scene);
        if markers {
            for (x, v) in xs.iter().zip(vs) {
                if v.is_finite() {
                    scene.push(Item::Circle {
                        cx: sx(*x),
                        cy: sy(*v),
                        r: 2.6,
                        fill: color,
                    });
                }
            }
        }
    }

    // Legend, top right inside the axes.
    let lw = legend
        .iter()
        .map(|(l, _, _)| text_width(l, 10.0, false))
        .fold(0.0f32, f32::max)
        + 40.0;
    let lh = 8.0 + 15.0 * legend.len() as f32;
    // The corner where the legend hides the fewest points of the curves (sampled along each
    // segment): top right, bottom right, top left, bottom left, as matplotlib's `loc="best"`.
    let mut samples: Vec<(f32, f32)> = Vec::new();
    for vs in p.train.iter().chain(p.val.iter()) {
        let pts: Vec<(f32, f32)> = xs
            .iter()
            .zip(vs)
            .filter(|(_, v)| v.is_finite())
            .map(|(x, v)| (sx(*x), sy(*v)))
            .collect();
        samples.extend(pts.iter().copied());
        for w in pts.windows(2) {
            for k in 1..8 {
                let t = k as f32 / 8.0;
                samples.push((
                    w[0].0 + (w[1].0 - w[0].0) * t,
                    w[0].1 + (w[1].1 - w[0].1) * t,
                ));
            }
        }
    }
    let corners = [
        (px + pw - lw - 6.0, py + 6.0),
        (px + pw - lw - 6.0, py + ph - lh - 6.0),
        (px + 6.0, py + 6.0),
        (px + 6.0, py + ph - lh - 6.0),
    ];
    let hidden = |(cx, cy): (f32, f32)| {
        samples
            .iter()
            .filter(|(x, y)| {
                *x >= cx - 4.0 && *x <= cx + lw + 4.0 && *y >= cy - 4.0 && *y <= cy + lh + 4.0
            })
            .count()
    };
    let (lx, ly) = corners
        .iter()
        .copied()
        .min_by_key(|&c| hidden(c))
        .unwrap_or(corners[0]);
    scene.push(Item::Rect {
        x: lx,
        y: ly,
        w: lw,
        h: lh,
        fill: Some(Color::WHITE),
        stroke: Some((Color(190, 190, 190), 0.8)),
    });
    for (i, (label, color, dashed)) in legend.iter().enumerate() {
        let y = ly + 12.0 + 15.0 * i as f32;
        scene.push(Item::Line {
            points: vec![(lx + 6.0, y), (lx + 28.0, y)],
            color: *color,
            width: 2.0,
            dash: dashed.then_some([6.0, 4.0]),
        });
        scene.text(
            lx + 33.0,
            y + 3.5,
            label,
            10.0,
            false,
            Color::BLACK,
            Anchor::Start,
        );
    }
}

/// Writes `history`'s curves to `path` (`.png` or `.svg`), atomically; the directory must exist.
pub(crate) fn plot_history(history: &History, path: &Path, title: Option<&str>) -> Result<()> {
    let scene = history_scene(&history.history, &history.epoch, title)?;
    write_scene("History.plot", path, &scene, CURVES_DPI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        // range / target = 0.2 → 2·10⁻¹; 2 → 2; 0.006 → 6·10⁻³ rounds up to 10·10⁻³.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(nice_step(1.0, 5.0), 0.2));
        assert!(close(nice_step(10.0, 5.0), 2.0));
        assert!(close(nice_step(0.03, 5.0), 0.01));
        assert!(close(nice_step(0.02, 5.0), 0.005));
        assert_eq!(ticks(0.0, 1.0, 0.5), vec![0.0, 0.5, 1.0]);
        assert_eq!(tick_label(0.25, 0.05), "0.25");
        assert_eq!(tick_label(2.0, 1.0), "2");
    }
}
