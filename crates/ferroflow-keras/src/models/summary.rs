//! `model.summary()`: Keras 3's table, reproduced exactly.
//!
//! Keras renders it with `rich` (`keras/src/utils/summary_utils.py`): a `HEAVY_HEAD` box with a
//! rule between rows; line length `min(88, columns - 4)` for sequential-like models (columns
//! at 45%, 80%, 100%) and `min(108, columns - 4)` with a fourth "Connected to" column for other
//! functional models (30%, 56%, 74%, 100%); `columns` is `$COLUMNS` or 80. rich then shaves the
//! `ncols + 1` border characters off the columns with `ratio_reduce` (banker's rounding).

use super::{Model, Network};
use crate::backend::{fmt_shape, Shape};
use crate::layers::LayerHandle;

/// One table row.
struct Row {
    cells: Vec<String>,
}

impl Model {
    /// Prints `summary_string(None)` to stdout, as Keras's `model.summary()`.
    pub fn summary(&self) {
        print!("{}", self.summary_string(None));
    }

    /// The summary table as Keras prints it, for a terminal `columns` wide (default `$COLUMNS`
    /// or 80).
    pub fn summary_string(&self, columns: Option<usize>) -> String {
        let columns = columns
            .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
            .unwrap_or(80);
        let (rows, four) = self.summary_rows();
        let (max_len, positions): (usize, &[f64]) = if four {
            (108, &[0.3, 0.56, 0.74, 1.0])
        } else {
            (88, &[0.45, 0.80, 1.0])
        };
        let line_length = max_len
            .min(columns.saturating_sub(4))
            .max(positions.len() * 6);
        let widths = column_widths(line_length, positions);
        let mut headers = vec!["Layer (type)", "Output Shape", "Param #"];
        if four {
            headers.push("Connected to");
        }
        let right = |i: usize| i == 2;
        let mut out = format!("Model: \"{}\"\n", self.name);
        out.push_str(&rule('┏', '━', '┳', '┓', &widths));
        out.push_str(&row_lines(
            &headers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &widths,
            '┃',
            &right,
        ));
        out.push_str(&rule('┡', '━', '╇', '┩', &widths));
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                out.push_str(&rule('├', '─', '┼', '┤', &widths));
            }
            out.push_str(&row_lines(&r.cells, &widths, '│', &right));
        }
        out.push_str(&rule('└', '─', '┴', '┘', &widths));
        let trainable: usize = count(&self.trainable_weights());
        let non_trainable: usize = count(&self.non_trainable_weights());
        let optimizer: usize = self
            .compiled
            .as_ref()
            .map(|c| {
                let slots = count(&c.optimizer.variables());
                // Keras counts the optimizer's variables once it is built (by the first step):
                // the slots, `iteration`, and `learning_rate` unless that is a schedule.
                let built = slots > 0 || c.optimizer.iterations() > 0;
                let lr_var = matches!(
                    c.optimizer.config().learning_rate,
                    crate::optimizers::LearningRate::Constant(_)
                );
                if built {
                    slots + 1 + usize::from(lr_var)
                } else {
                    0
                }
            })
            .unwrap_or(0);
        let total = trainable + non_trainable + optimizer;
        out.push_str(&format!(
            " Total params: {} ({})\n",
            commas(total),
            mem(total)
        ));
        out.push_str(&format!(
            " Trainable params: {} ({})\n",
            commas(trainable),
            mem(trainable)
        ));
        out.push_str(&format!(
            " Non-trainable params: {} ({})\n",
            commas(non_trainable),
            mem(non_trainable)
        ));
        if optimizer > 0 {
            out.push_str(&format!(
                " Optimizer params: {} ({})\n",
                commas(optimizer),
                mem(optimizer)
            ));
        }
        out
    }

    /// The rows, and whether the "Connected to" column is needed.
    fn summary_rows(&self) -> (Vec<Row>, bool) {
        match &self.net {
            Network::Sequential(s) => {
                let rows = s
                    .layers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        let shape = s.output_shapes.get(i);
                        Row {
                            cells: vec![
                                layer_cell(l),
                                shape.map_or("?".to_string(), |s| fmt_shape(s)),
                                params_cell(l),
                            ],
                        }
                    })
                    .collect();
                (rows, false)
            }
            Network::Functional(f) => {
                let layers = f.layers();
                // Sequential-like: one input, every layer called once on one tensor, a chain.
                let chain = f.inputs.len() == 1
                    && f.outputs.len() == 1
                    && f.nodes.len() + 1 == layers.len()
                    && f.nodes.iter().all(|n| n.inputs.len() == 1)
                    && f.nodes
                        .windows(2)
                        .all(|w| w[1].inputs[0].node.id == w[0].id);
                let rows = layers
                    .iter()
                    .map(|l| {
                        let mut shapes: Vec<Shape> = Vec::new();
                        let mut connected: Vec<String> = Vec::new();
                        for t in &f.inputs {
                            if t.node.layer.same(l) {
                                shapes.push(t.shape().clone());
                            }
                        }
                        for n in f.nodes.iter().filter(|n| n.layer.same(l)) {
                            shapes.extend(n.output_shapes.iter().cloned());
                            for t in &n.inputs {
                                connected.push(format!(
                                    "{}[{}][{}]",
                                    t.layer_name(),
                                    t.node.node_index,
                                    t.index
                                ));
                            }
                        }
                        shapes.dedup();
                        let shape = match shapes.len() {
                            0 => "?".to_string(),
                            1 => fmt_shape(&shapes[0]),
                            _ => format!(
                                "[{}]",
                                shapes
                                    .iter()
                                    .map(|s| fmt_shape(s))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        let mut cells = vec![layer_cell(l), shape, params_cell(l)];
                        if !chain {
                            cells.push(if connected.is_empty() {
                                "-".to_string()
                            } else {
                                connected.join(", ")
                            });
                        }
                        Row { cells }
                    })
                    .collect();
                (rows, !chain)
            }
        }
    }
}

fn layer_cell(l: &LayerHandle) -> String {
    let l = l.lock();
    format!("{} ({})", l.name(), l.class_name())
}

fn params_cell(l: &LayerHandle) -> String {
    let l = l.lock();
    if !l.base().built && l.base().weights.is_empty() && l.class_name() != "InputLayer" {
        // Keras shows unbuilt layers as "0 (unbuilt)"; layers without weights build trivially.
        return "0 (unbuilt)".to_string();
    }
    commas(l.count_params())
}

fn count(vars: &[ferroflow_core::Variable]) -> usize {
    vars.iter()
        .map(|v| v.shape().iter().product::<usize>())
        .sum()
}

/// `225034` → `225,034`.
fn commas(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Keras's `readable_memory_size` of `n` float32 parameters: `879.04 KB`.
fn mem(n: usize) -> String {
    let mut size = (n * 4) as f64;
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut u = 0;
    while size >= 1024.0 && u + 1 < units.len() {
        size /= 1024.0;
        u += 1;
    }
    format!("{size:.2} {}", units[u])
}

/// rich's column widths (each including one space of padding either side).
fn column_widths(line_length: usize, positions: &[f64]) -> Vec<usize> {
    let mut widths = Vec::new();
    let mut prev = 0usize;
    for p in positions {
        let at = (p * line_length as f64) as usize;
        widths.push(at - prev);
        prev = at;
    }
    // ratio_reduce: remove the border characters, column by column with equal ratios.
    let mut excess = positions.len() + 1;
    let mut remaining_ratio = widths.len();
    for w in widths.iter_mut() {
        let d = round_half_even(excess as f64 / remaining_ratio as f64);
        let d = d.min(*w - 1);
        *w -= d;
        excess -= d;
        remaining_ratio -= 1;
    }
    widths
}

/// Python's `round` (half to even).
fn round_half_even(x: f64) -> usize {
    let f = x.floor();
    let diff = x - f;
    let up = diff > 0.5 || (diff == 0.5 && (f as i64) % 2 == 1);
    let r = if up { f + 1.0 } else { f };
    r as usize
}

fn rule(left: char, fill: char, mid: char, right: char, widths: &[usize]) -> String {
    let mut s = String::new();
    s.push(left);
    for (i, &w) in widths.iter().enumerate() {
        if i > 0 {
            s.push(mid);
        }
        s.extend(std::iter::repeat_n(fill, w));
    }
    s.push(right);
    s.push('\n');
    s
}

/// The lines of one row: cells word-wrapped to their column, padded, aligned.
fn row_lines(
    cells: &[String],
    widths: &[usize],
    bar: char,
    right: &dyn Fn(usize) -> bool,
) -> String {
    let wrapped: Vec<Vec<String>> = cells
        .iter()
        .zip(widths)
        .map(|(c, &w)| wrap(c, w.saturating_sub(2).max(1)))
        .collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    let mut s = String::new();
    for line in 0..height {
        s.push(bar);
        for (i, (lines, &w)) in wrapped.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push(bar);
            }
            let text = lines.get(line).map(String::as_str).unwrap_or("");
            let inner = w.saturating_sub(2);
            let len = text.chars().count();
            let pad = inner.saturating_sub(len);
            s.push(' ');
            if right(i) {
                s.push_str(&" ".repeat(pad));
                s.push_str(text);
            } else {
                s.push_str(text);
                s.push_str(&" ".repeat(pad));
            }
            s.push(' ');
        }
        s.push(bar);
        s.push('\n');
    }
    s
}

/// Word-wraps `text` to `width` characters; a word longer than the width is cut with `…`.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let word: String = if word.chars().count() > width {
            let mut w: String = word.chars().take(width - 1).collect();
            w.push('…');
            w
        } else {
            word.to_string()
        };
        let cur_len = cur.chars().count();
        if cur.is_empty() {
            cur = word;
        } else if cur_len + 1 + word.chars().count() <= width {
            cur.push(' ');
            cur.push_str(&word);
        } else {
            lines.push(std::mem::take(&mut cur));
            cur = word;
        }
    }
    lines.push(cur);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_match_rich() {
        assert_eq!(column_widths(76, &[0.45, 0.80, 1.0]), vec![33, 24, 15]);
        assert_eq!(column_widths(88, &[0.45, 0.80, 1.0]), vec![38, 29, 17]);
        assert_eq!(
            column_widths(108, &[0.3, 0.56, 0.74, 1.0]),
            vec![31, 27, 17, 28]
        );
    }

    #[test]
    fn numbers_format_like_keras() {
        assert_eq!(commas(225034), "225,034");
        assert_eq!(commas(0), "0");
        assert_eq!(mem(225034), "879.04 KB");
        assert_eq!(mem(0), "0.00 B");
        assert_eq!(mem(675104), "2.58 MB");
    }
}
