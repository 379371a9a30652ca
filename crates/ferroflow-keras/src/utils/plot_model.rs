//! `keras.utils.plot_model` and `keras.utils.model_to_dot`, drawn without Graphviz.
//!
//! Matches Keras 3's `keras/src/utils/model_visualization.py`: one box per layer (a functional
//! model's `InputLayer`s included; a `Sequential`'s input is not a box, as in Keras where
//! `model.layers` leaves it out), a black header with `name (ClassName)` (just the class name,
//! bold, when `show_layer_names` is off), an optional white `Activation: relu` row, then white
//! cells `Input shape: (None, 28, 28, 1)` · `Output shape: (None, 26, 26, 32)` · `Output dtype:
//! float32` · a green `Trainable` / red `Non-trainable` cell (only layers with weights). One edge
//! per connected pair of layers (a shared layer is one box with several edges), 2 points wide.
//! A layer called more than once shows its first call's shapes, as Keras's `layer.input` and
//! `layer.output` do. Shapes print as Python tuples, several inputs as a list. The DOT text is
//! byte for byte what Keras 3.15 writes (with layer names as node ids; checked in the tests
//! against files real Keras wrote).
//!
//! The output format follows the file's extension: `.png` (the default when there is none, as in
//! Keras), `.svg`, or `.dot` / `.gv` (the DOT text Keras hands to Graphviz, node ids being the
//! layer names). The layout is [`crate::utils::layout`]'s; the picture's units are points and a
//! PNG has `dpi / 72` pixels a point (`dpi=200` as in Keras).

use std::path::{Path, PathBuf};

use ferroflow_core::{Error, Result};

use super::layout::{layout, BoxPos, Layout, RankDir, Spacing};
use super::render::{
    format_of, spans_width, write_atomic, Anchor, Color, Format, Item, Scene, Span,
};
use crate::backend::{fmt_shape, Shape};
use crate::layers::LayerHandle;
use crate::models::{Model, Network};

/// `plot_model`'s and `model_to_dot`'s options, with `plot_model`'s defaults
/// (`show_layer_names=False` — `model_to_dot` defaults it to true: see
/// [`PlotOptions::for_dot`]).
#[derive(Clone, Debug)]
pub struct PlotOptions {
    /// Show each layer's input and output shapes.
    pub show_shapes: bool,
    /// Show each layer's output dtype.
    pub show_dtype: bool,
    /// Show `name (ClassName)` instead of the class name alone.
    pub show_layer_names: bool,
    /// `"TB"` (top to bottom) or `"LR"` (left to right).
    pub rankdir: RankDir,
    /// Draw nested models as clusters. ferroflow models cannot hold models as layers yet, so
    /// this changes nothing; it is accepted for Keras compatibility.
    pub expand_nested: bool,
    /// The PNG's resolution: `dpi / 72` pixels a point (Keras's default 200).
    pub dpi: u32,
    /// Show each layer's activation (layers that have one: `Dense`, the convolutions,
    /// `Activation`).
    pub show_layer_activations: bool,
    /// Mark layers with weights `Trainable` (green) or `Non-trainable` (red).
    pub show_trainable: bool,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            show_shapes: false,
            show_dtype: false,
            show_layer_names: false,
            rankdir: RankDir::TopBottom,
            expand_nested: false,
            dpi: 200,
            show_layer_activations: false,
            show_trainable: false,
        }
    }
}

impl PlotOptions {
    /// `plot_model`'s defaults.
    pub fn new() -> PlotOptions {
        PlotOptions::default()
    }

    /// `model_to_dot`'s defaults (the same, but `show_layer_names=True`).
    pub fn for_dot() -> PlotOptions {
        PlotOptions {
            show_layer_names: true,
            ..PlotOptions::default()
        }
    }
}

/// The builder [`plot_model`] returns: set options, then [`PlotModel::run`].
#[must_use = "call .run() to write the file"]
pub struct PlotModel<'a> {
    model: &'a Model,
    to_file: PathBuf,
    /// The options so far.
    pub options: PlotOptions,
    bad_rankdir: Option<String>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $name(mut self, v: $ty) -> Self {
            self.options.$name = v;
            self
        }
    )*};
}

impl PlotModel<'_> {
    setters! {
        /// `show_shapes` (default false).
        show_shapes: bool,
        /// `show_dtype` (default false).
        show_dtype: bool,
        /// `show_layer_names` (default false, as Keras's `plot_model`).
        show_layer_names: bool,
        /// `expand_nested` (default false; no effect yet, see [`PlotOptions::expand_nested`]).
        expand_nested: bool,
        /// `dpi` (default 200).
        dpi: u32,
        /// `show_layer_activations` (default false).
        show_layer_activations: bool,
        /// `show_trainable` (default false).
        show_trainable: bool,
    }

    /// `rankdir`: `"TB"` (default) or `"LR"`; anything else is an error when the plot runs.
    pub fn rankdir(mut self, dir: &str) -> Self {
        match RankDir::parse(dir) {
            Some(d) => self.options.rankdir = d,
            None => self.bad_rankdir = Some(dir.to_string()),
        }
        self
    }

    /// Writes the file (atomically; its directory must exist).
    pub fn run(self) -> Result<()> {
        if let Some(bad) = &self.bad_rankdir {
            return Err(bad_rankdir(bad));
        }
        let path = self.to_file.as_path();
        let format = format_of("plot_model", path, true)?;
        let bytes = match format {
            Format::Dot => model_to_dot(self.model, &self.options)?.into_bytes(),
            Format::Svg => model_scene(self.model, &self.options)?
                .to_svg()
                .into_bytes(),
            Format::Png => {
                model_scene(self.model, &self.options)?.to_png(self.options.dpi as f32)?
            }
        };
        write_atomic("plot_model", path, &bytes)
    }
}

fn bad_rankdir(bad: &str) -> Error {
    Error::invalid(
        "plot_model",
        format!("rankdir must be \"TB\" or \"LR\", got {bad:?}"),
    )
}

/// `keras.utils.plot_model(model, to_file)`: a picture of the model's layer graph, PNG, SVG or
/// DOT by `to_file`'s extension; options as Keras's, set on the returned builder.
///
/// ```no_run
/// use ferroflow_keras::layers::{Dense, Input};
/// use ferroflow_keras::utils::plot_model;
/// let model = ferroflow_keras::sequential![Input::new(&[784]), Dense::new(10)]?;
/// plot_model(&model, "model.png").show_shapes(true).show_layer_names(true).run()?;
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn plot_model(model: &Model, to_file: impl AsRef<Path>) -> PlotModel<'_> {
    PlotModel {
        model,
        to_file: to_file.as_ref().to_path_buf(),
        options: PlotOptions::new(),
        bad_rankdir: None,
    }
}

/// One box of the plot.
#[derive(Clone, Debug)]
struct PlotNode {
    name: String,
    class_name: String,
    activation: Option<String>,
    /// `None` for an `InputLayer` (Keras shows no input shape there).
    input_shape: Option<String>,
    output_shape: String,
    dtype: String,
    /// `Some(trainable)` for layers with weights.
    trainable: Option<bool>,
}

fn not_built() -> Error {
    Error::invalid(
        "plot_model",
        "This model has not yet been built. Build the model first by calling `build()` or by calling the model on a batch of data.",
    )
}

fn shapes_str(shapes: &[Shape]) -> String {
    match shapes {
        [] => "?".to_string(),
        [one] => fmt_shape(one),
        many => format!(
            "[{}]",
            many.iter()
                .map(|s| fmt_shape(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn node_for(l: &LayerHandle, input: Option<String>, output: String, dtype: String) -> PlotNode {
    let g = l.lock();
    let activation = g
        .get_config()
        .get("activation")
        .and_then(|a| a.as_str())
        .map(|a| if a.is_empty() { "linear" } else { a }.to_string());
    let trainable = (!g.base().weights.is_empty()).then_some(g.base().trainable);
    PlotNode {
        name: g.name().to_string(),
        class_name: g.class_name().to_string(),
        activation,
        input_shape: input,
        output_shape: output,
        dtype,
        trainable,
    }
}

/// The boxes and edges of a model's graph.
/// Boxes and edges `(source, target)` between them.
type Graph = (Vec<PlotNode>, Vec<(usize, usize)>);

fn model_graph(model: &Model) -> Result<Graph> {
    match &model.net {
        Network::Sequential(s) => {
            let Some(input) = s.input_shape.clone() else {
                return Err(not_built());
            };
            if s.layers.is_empty() || s.output_shapes.len() != s.layers.len() {
                return Err(not_built());
            }
            let mut prev = input;
            let mut nodes = Vec::new();
            for (l, out) in s.layers.iter().zip(&s.output_shapes) {
                nodes.push(node_for(
                    l,
                    Some(fmt_shape(&prev)),
                    fmt_shape(out),
                    "float32".to_string(),
                ));
                prev = out.clone();
            }
            let edges = (1..nodes.len()).map(|i| (i - 1, i)).collect();
            Ok((nodes, edges))
        }
        Network::Functional(f) => {
            let layers = f.layers();
            let index = |l: &LayerHandle| layers.iter().position(|m| m.same(l));
            let mut nodes = Vec::new();
            for l in &layers {
                if let Some(t) = f.inputs.iter().find(|t| t.node.layer.same(l)) {
                    nodes.push(node_for(
                        l,
                        None,
                        fmt_shape(t.shape()),
                        t.dtype().name().to_string(),
                    ));
                    continue;
                }
                // Keras's `layer.input` / `layer.output` are the first call's.
                let first = f
                    .nodes
                    .iter()
                    .filter(|n| n.layer.same(l))
                    .min_by_key(|n| n.node_index);
                let (input, output) = match first {
                    Some(n) => {
                        let ins: Vec<Shape> = n.inputs.iter().map(|t| t.shape().clone()).collect();
                        (shapes_str(&ins), shapes_str(&n.output_shapes))
                    }
                    None => ("?".to_string(), "?".to_string()),
                };
                nodes.push(node_for(l, Some(input), output, "float32".to_string()));
            }
            let mut edges: Vec<(usize, usize)> = Vec::new();
            for n in &f.nodes {
                let Some(dst) = index(&n.layer) else { continue };
                for t in &n.inputs {
                    if let Some(src) = index(&t.node.layer) {
                        if !edges.contains(&(src, dst)) {
                            edges.push((src, dst));
                        }
                    }
                }
            }
            Ok((nodes, edges))
        }
    }
}

/// HTML-label escaping for DOT.
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Keras's `make_layer_label`: the HTML-like table Graphviz draws.
fn dot_label(n: &PlotNode, o: &PlotOptions) -> String {
    let mut colspan_max = usize::from(o.show_dtype) + usize::from(o.show_trainable);
    if o.show_shapes {
        colspan_max += 2;
    }
    let colspan = colspan_max.max(1);
    let mut t =
        String::from(r#"<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">"#);
    if o.show_layer_names {
        t += &format!(
            r#"<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" color="white"><b>{}</b> ({})</font></td></tr>"#,
            html(&n.name),
            html(&n.class_name)
        );
    } else {
        t += &format!(
            r#"<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" color="white"><b>{}</b></font></td></tr>"#,
            html(&n.class_name)
        );
    }
    if o.show_layer_activations {
        if let Some(a) = &n.activation {
            t += &format!(
                r#"<tr><td bgcolor="white" colspan="{colspan}"><font point-size="14">Activation: <b>{}</b></font></td></tr>"#,
                html(a)
            );
        }
    }
    let cols: Vec<String> = cells(n, o)
        .into_iter()
        .map(|c| {
            let (bg, color) = match c.kind {
                CellKind::White => ("white", ""),
                CellKind::Trainable => ("forestgreen", r#" color="white""#),
                CellKind::Frozen => ("firebrick", r#" color="white""#),
            };
            if c.label.is_empty() {
                format!(
                    r#"<td bgcolor="{bg}"><font point-size="14"{color}><b>{}</b></font></td>"#,
                    html(&c.value)
                )
            } else {
                format!(
                    r#"<td bgcolor="{bg}"><font point-size="14"{color}>{}<b>{}</b></font></td>"#,
                    html(&c.label),
                    html(&c.value)
                )
            }
        })
        .collect();
    if !cols.is_empty() {
        t += &format!("<tr>{}</tr>", cols.concat());
    }
    t += "</table>>";
    t
}

/// `model_to_dot(model)`: the Graphviz DOT text of the model's graph, as Keras builds it with
/// pydot (`rankdir`, `concentrate=true`, `dpi`, `splines=ortho`, record nodes with HTML table
/// labels, edges of pen width 2). Node ids are the (unique) layer names, quoted.
///
/// ```
/// use ferroflow_keras::layers::{Dense, Input, Layer};
/// use ferroflow_keras::utils::{model_to_dot, PlotOptions};
/// let model = ferroflow_keras::sequential![
///     Input::new(&[4]),
///     Dense::new(8).named("hidden"),
///     Dense::new(1).named("out"),
/// ]?;
/// let dot = model_to_dot(&model, &PlotOptions::for_dot())?;
/// assert!(dot.contains(r#""hidden" -> "out" [penwidth=2];"#));
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn model_to_dot(model: &Model, options: &PlotOptions) -> Result<String> {
    let (nodes, edges) = model_graph(model)?;
    let mut s = String::from("digraph G {\n");
    s += &format!("rankdir={};\n", options.rankdir.as_str());
    s += "concentrate=true;\n";
    s += &format!("dpi={};\n", options.dpi);
    s += "splines=ortho;\n";
    s += "node [shape=record];\n";
    for n in &nodes {
        s += &format!(
            "{} [label={}, fontname=Helvetica, border=0, margin=0];\n",
            dot_id(&n.name),
            dot_label(n, options)
        );
    }
    for (a, b) in edges {
        s += &format!(
            "{} -> {} [penwidth=2];\n",
            dot_id(&nodes[a].name),
            dot_id(&nodes[b].name)
        );
    }
    s += "}\n";
    Ok(s)
}

/// A quoted DOT id.
fn dot_id(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CellKind {
    White,
    Trainable,
    Frozen,
}

/// One cell of the bottom row: a plain label and a bold value.
struct Cell {
    label: String,
    value: String,
    kind: CellKind,
}

fn cells(n: &PlotNode, o: &PlotOptions) -> Vec<Cell> {
    let mut cols = Vec::new();
    let white = |label: &str, value: &str| Cell {
        label: label.to_string(),
        value: value.to_string(),
        kind: CellKind::White,
    };
    if o.show_shapes {
        if let Some(i) = &n.input_shape {
            cols.push(white("Input shape: ", i));
        }
        cols.push(white("Output shape: ", &n.output_shape));
    }
    if o.show_dtype {
        cols.push(white("Output dtype: ", &n.dtype));
    }
    if o.show_trainable {
        if let Some(t) = n.trainable {
            cols.push(Cell {
                label: String::new(),
                value: if t { "Trainable" } else { "Non-trainable" }.to_string(),
                kind: if t {
                    CellKind::Trainable
                } else {
                    CellKind::Frozen
                },
            });
        }
    }
    cols
}

// Graphviz's geometry for Keras's table: cellpadding 10, cellborder 1, cellspacing 2, fonts 16
// and 14 points.
const PAD: f32 = 10.0;
const BORDER: f32 = 1.0;
const SPACING: f32 = 2.0;
const HEAD_SIZE: f32 = 16.0;
const ROW_SIZE: f32 = 14.0;
const LINE: f32 = 1.2;
const ARROW_LEN: f32 = 10.0;
const ARROW_HALF: f32 = 4.0;

fn cell_h(size: f32) -> f32 {
    size * LINE + 2.0 * (PAD + BORDER)
}

fn cell_w(text_w: f32) -> f32 {
    text_w + 2.0 * (PAD + BORDER)
}

fn header_spans(n: &PlotNode, o: &PlotOptions) -> Vec<Span> {
    if o.show_layer_names {
        vec![
            Span::new(n.name.clone(), true),
            Span::new(format!(" ({})", n.class_name), false),
        ]
    } else {
        vec![Span::new(n.class_name.clone(), true)]
    }
}

fn cell_spans(c: &Cell) -> Vec<Span> {
    let mut v = Vec::new();
    if !c.label.is_empty() {
        v.push(Span::new(c.label.clone(), false));
    }
    v.push(Span::new(c.value.clone(), true));
    v
}

fn activation_spans(a: &str) -> Vec<Span> {
    vec![Span::new("Activation: ", false), Span::new(a, true)]
}

/// The size of a node's box.
fn box_size(n: &PlotNode, o: &PlotOptions) -> (f32, f32) {
    let head_w = cell_w(spans_width(&header_spans(n, o), HEAD_SIZE));
    let mut w = head_w;
    let mut h = SPACING + cell_h(HEAD_SIZE) + SPACING;
    if let (true, Some(a)) = (o.show_layer_activations, &n.activation) {
        w = w.max(cell_w(spans_width(&activation_spans(a), ROW_SIZE)));
        h += cell_h(ROW_SIZE) + SPACING;
    }
    let cs = cells(n, o);
    if !cs.is_empty() {
        let row: f32 = cs
            .iter()
            .map(|c| cell_w(spans_width(&cell_spans(c), ROW_SIZE)))
            .sum::<f32>()
            + SPACING * (cs.len() - 1) as f32;
        w = w.max(row);
        h += cell_h(ROW_SIZE) + SPACING;
    }
    (w + 2.0 * SPACING, h)
}

/// Draws one node's table at `b`.
fn draw_node(scene: &mut Scene, n: &PlotNode, o: &PlotOptions, b: &BoxPos) {
    scene.push(Item::Rect {
        x: b.x,
        y: b.y,
        w: b.w,
        h: b.h,
        fill: Some(Color::BLACK),
        stroke: None,
    });
    let inner_x = b.x + SPACING;
    let inner_w = b.w - 2.0 * SPACING;
    let mut y = b.y + SPACING;
    let baseline = |top: f32, size: f32| top + BORDER + PAD + size * 0.95;
    let head_h = cell_h(HEAD_SIZE);
    scene.push(Item::Text {
        x: inner_x + inner_w / 2.0,
        y: baseline(y, HEAD_SIZE),
        spans: header_spans(n, o),
        size: HEAD_SIZE,
        color: Color::WHITE,
        anchor: Anchor::Middle,
        vertical: false,
    });
    y += head_h + SPACING;
    let row_h = cell_h(ROW_SIZE);
    if let (true, Some(a)) = (o.show_layer_activations, &n.activation) {
        white_cell(scene, inner_x, y, inner_w, row_h, Color::WHITE);
        scene.push(Item::Text {
            x: inner_x + inner_w / 2.0,
            y: baseline(y, ROW_SIZE),
            spans: activation_spans(a),
            size: ROW_SIZE,
            color: Color::BLACK,
            anchor: Anchor::Middle,
            vertical: false,
        });
        y += row_h + SPACING;
    }
    let cs = cells(n, o);
    if !cs.is_empty() {
        let natural: Vec<f32> = cs
            .iter()
            .map(|c| cell_w(spans_width(&cell_spans(c), ROW_SIZE)))
            .collect();
        let used: f32 = natural.iter().sum::<f32>() + SPACING * (cs.len() - 1) as f32;
        let extra = (inner_w - used).max(0.0) / cs.len() as f32;
        let mut x = inner_x;
        for (c, w) in cs.iter().zip(natural) {
            let w = w + extra;
            let (bg, fg) = match c.kind {
                CellKind::White => (Color::WHITE, Color::BLACK),
                CellKind::Trainable => (Color(34, 139, 34), Color::WHITE),
                CellKind::Frozen => (Color(178, 34, 34), Color::WHITE),
            };
            white_cell(scene, x, y, w, row_h, bg);
            scene.push(Item::Text {
                x: x + w / 2.0,
                y: baseline(y, ROW_SIZE),
                spans: cell_spans(c),
                size: ROW_SIZE,
                color: fg,
                anchor: Anchor::Middle,
                vertical: false,
            });
            x += w + SPACING;
        }
    }
}

/// A cell: its fill inside a 1-point black border.
fn white_cell(scene: &mut Scene, x: f32, y: f32, w: f32, h: f32, fill: Color) {
    scene.push(Item::Rect {
        x: x + BORDER,
        y: y + BORDER,
        w: w - 2.0 * BORDER,
        h: h - 2.0 * BORDER,
        fill: Some(fill),
        stroke: None,
    });
}

/// An edge: a 2-point polyline ending in a filled arrowhead touching the target.
fn draw_edge(scene: &mut Scene, pts: &[(f32, f32)]) {
    if pts.len() < 2 {
        return;
    }
    let tip = pts[pts.len() - 1];
    let from = pts[pts.len() - 2];
    let (dx, dy) = (tip.0 - from.0, tip.1 - from.1);
    let len = (dx * dx + dy * dy).sqrt().max(1e-3);
    let (ux, uy) = (dx / len, dy / len);
    let base = (tip.0 - ux * ARROW_LEN, tip.1 - uy * ARROW_LEN);
    let mut line = pts.to_vec();
    let last = line.len() - 1;
    line[last] = base;
    scene.push(Item::Line {
        points: line,
        color: Color::BLACK,
        width: 2.0,
        dash: None,
    });
    scene.push(Item::Polygon {
        points: vec![
            tip,
            (base.0 - uy * ARROW_HALF, base.1 + ux * ARROW_HALF),
            (base.0 + uy * ARROW_HALF, base.1 - ux * ARROW_HALF),
        ],
        fill: Color::BLACK,
    });
}

/// The layout of a model's plot (boxes in layer order, edges in graph order): the geometry
/// `plot_model` draws. Exposed for tests and tools.
pub fn model_layout(model: &Model, options: &PlotOptions) -> Result<Layout> {
    let (nodes, edges) = model_graph(model)?;
    Ok(layout_of(&nodes, &edges, options))
}

fn layout_of(nodes: &[PlotNode], edges: &[(usize, usize)], o: &PlotOptions) -> Layout {
    let sizes: Vec<(f32, f32)> = nodes.iter().map(|n| box_size(n, o)).collect();
    layout(&sizes, edges, o.rankdir, Spacing::default())
}

/// The picture of a model.
fn model_scene(model: &Model, o: &PlotOptions) -> Result<Scene> {
    let (nodes, edges) = model_graph(model)?;
    let lay = layout_of(&nodes, &edges, o);
    let mut scene = Scene::new(lay.width, lay.height);
    for e in &lay.edges {
        draw_edge(&mut scene, e);
    }
    for (n, b) in nodes.iter().zip(&lay.boxes) {
        draw_node(&mut scene, n, o, b);
    }
    Ok(scene)
}
