//! `plot_model` / `model_to_dot` (DOT text against files real Keras 3.15 wrote, layout
//! properties, PNG and SVG output), the training curves (`History::plot`) and reading a
//! CSVLogger file back (`History::read_csv`), atomic writes.

use std::path::{Path, PathBuf};

use ferroflow_keras::callbacks::History;
use ferroflow_keras::layers::{Concatenate, Conv2D, Dense, Flatten, Input, MaxPooling2D};
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::layout::{layout, BoxPos, RankDir, Spacing};
use ferroflow_keras::utils::{model_layout, model_to_dot, plot_model, PlotOptions};

/// A fresh empty directory under the target's temp dir.
fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ff_plot_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keras/fixtures/plot")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

/// The model of `fixtures/plot/keras_dot.py`'s `sequential.dot`.
fn small_sequential() -> Sequential {
    ferroflow_keras::sequential![
        Input::new(&[4]),
        Dense::new(8).activation("relu").named("hidden"),
        Dense::new(1).named("out"),
    ]
    .unwrap()
}

/// The model of `two_input.dot`: two inputs, a shared Dense, a Concatenate, one output.
fn two_input() -> Model {
    let a = Input::named(&[16], "a_in");
    let b = Input::named(&[16], "b_in");
    let shared = LayerHandle::new(Dense::new(32).activation("relu").named("shared"));
    let (xa, xb) = (shared.apply(&a).unwrap(), shared.apply(&b).unwrap());
    let merged = Concatenate::new().named("merge").apply([&xa, &xb]).unwrap();
    let score = Dense::new(1).named("score").apply(&merged).unwrap();
    Model::new([&a, &b], &score).unwrap()
}

fn seed_cnn() -> Sequential {
    let mut m = Sequential::new();
    m.add(
        Conv2D::new(32, (3, 3))
            .activation("relu")
            .input_shape(&[28, 28, 1]),
    )
    .unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Conv2D::new(64, (3, 3)).activation("relu")).unwrap();
    m.add(MaxPooling2D::new((2, 2))).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dense::new(128).activation("relu")).unwrap();
    m.add(Dense::new(10).activation("softmax")).unwrap();
    m
}

#[test]
fn dot_matches_keras_for_a_sequential() {
    let model = small_sequential();
    let opts = PlotOptions {
        show_shapes: true,
        show_dtype: true,
        show_layer_activations: true,
        show_trainable: true,
        ..PlotOptions::for_dot()
    };
    assert_eq!(
        model_to_dot(&model, &opts).unwrap(),
        fixture("sequential.dot")
    );
}

#[test]
fn dot_matches_keras_for_a_two_input_model_with_a_shared_layer() {
    let model = two_input();
    let opts = PlotOptions {
        show_shapes: true,
        ..PlotOptions::for_dot()
    };
    let dot = model_to_dot(&model, &opts).unwrap();
    assert_eq!(dot, fixture("two_input.dot"));
    // Read independently: 5 boxes, 4 edges (the shared layer's edge to merge once).
    assert_eq!(dot.matches("[label=<").count(), 5);
    assert_eq!(dot.matches(" -> ").count(), 4);
    assert!(dot.contains("\"a_in\" -> \"shared\" [penwidth=2];"));
    assert!(dot.contains("\"b_in\" -> \"shared\" [penwidth=2];"));
    assert!(dot.contains("\"shared\" -> \"merge\" [penwidth=2];"));
    assert!(dot.contains("Input shape: <b>[(None, 32), (None, 32)]</b>"));
}

#[test]
fn dot_options_follow_keras() {
    let model = small_sequential();
    // plot_model's defaults: class names only, no shapes.
    let dot = model_to_dot(&model, &PlotOptions::new()).unwrap();
    assert!(dot.contains(r#"<font point-size="16" color="white"><b>Dense</b></font>"#));
    assert!(!dot.contains("Input shape") && !dot.contains("Output shape"));
    assert!(dot.contains("rankdir=TB;"));
    let lr = PlotOptions {
        rankdir: RankDir::LeftRight,
        dpi: 96,
        ..PlotOptions::new()
    };
    let dot = model_to_dot(&model, &lr).unwrap();
    assert!(dot.contains("rankdir=LR;") && dot.contains("dpi=96;"));
    // A frozen layer is red.
    let frozen =
        ferroflow_keras::sequential![Input::new(&[2]), Dense::new(1).trainable(false).named("f")]
            .unwrap();
    let o = PlotOptions {
        show_trainable: true,
        ..PlotOptions::new()
    };
    assert!(model_to_dot(&frozen, &o).unwrap().contains(
        r#"<td bgcolor="firebrick"><font point-size="14" color="white"><b>Non-trainable</b>"#
    ));
}

#[test]
fn unbuilt_model_and_bad_arguments_are_errors() {
    let mut m = Sequential::new();
    m.add(Dense::new(3)).unwrap();
    let e = model_to_dot(&m, &PlotOptions::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("has not yet been built"), "{e}");
    let d = tmp_dir("badargs");
    let model = small_sequential();
    let e = plot_model(&model, d.join("m.jpg"))
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.jpg") && e.contains(".png, .svg or .dot"),
        "{e}"
    );
    let e = plot_model(&model, d.join("m.png"))
        .rankdir("BT")
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("rankdir") && e.contains("BT"), "{e}");
    let e = plot_model(&model, d.join("missing/m.png"))
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not exist") && e.contains("missing"), "{e}");
}

fn check_layout(boxes: &[BoxPos], edges: &[Vec<(f32, f32)>], dir: RankDir) {
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            assert!(!a.overlaps(b), "boxes overlap: {a:?} {b:?}");
        }
    }
    for e in edges {
        assert!(e.len() >= 2);
        for w in e.windows(2) {
            let (along0, along1) = match dir {
                RankDir::TopBottom => (w[0].1, w[1].1),
                RankDir::LeftRight => (w[0].0, w[1].0),
            };
            assert!(along1 >= along0, "edge goes backwards: {e:?}");
        }
        let (first, last) = (e[0], e[e.len() - 1]);
        match dir {
            RankDir::TopBottom => assert!(last.1 > first.1),
            RankDir::LeftRight => assert!(last.0 > first.0),
        }
    }
}

#[test]
fn model_layouts_go_down_without_overlaps() {
    for dir in [RankDir::TopBottom, RankDir::LeftRight] {
        for model in [seed_cnn().into_model(), two_input()] {
            let opts = PlotOptions {
                show_shapes: true,
                show_layer_names: true,
                rankdir: dir,
                ..PlotOptions::new()
            };
            let l = model_layout(&model, &opts).unwrap();
            check_layout(&l.boxes, &l.edges, dir);
            // Each edge starts on its source's far side and ends on its target's near side.
            for b in &l.boxes {
                assert!(b.x >= 0.0 && b.y >= 0.0);
                assert!(b.x + b.w <= l.width && b.y + b.h <= l.height);
            }
        }
    }
}

#[test]
fn layout_of_a_diamond_with_a_long_edge() {
    // 0 -> 1 -> 2 -> 3 and 0 -> 3 (the long edge bends around 1 and 2), 4 -> 2.
    let sizes = vec![
        (100.0, 40.0),
        (80.0, 40.0),
        (120.0, 30.0),
        (60.0, 50.0),
        (90.0, 40.0),
    ];
    let edges = vec![(0, 1), (1, 2), (2, 3), (0, 3), (4, 2)];
    for dir in [RankDir::TopBottom, RankDir::LeftRight] {
        let l = layout(&sizes, &edges, dir, Spacing::default());
        assert_eq!(l.ranks, vec![0, 1, 2, 3, 0]);
        check_layout(&l.boxes, &l.edges, dir);
        // The long edge has bend points (two per rank crossed).
        assert_eq!(l.edges[3].len(), 2 + 2 * 2);
        // Its bends do not pass through the boxes of ranks 1 and 2.
        for &(x, y) in &l.edges[3][1..5] {
            for b in [&l.boxes[1], &l.boxes[2]] {
                let inside = x > b.x && x < b.x + b.w && y > b.y && y < b.y + b.h;
                assert!(!inside, "bend {x},{y} inside {b:?}");
            }
        }
    }
}

#[test]
fn layout_reduces_crossings() {
    // Two chains given in crossed order: 0->3, 1->2 with 0,1 on top, 2,3 below. The barycenter
    // ordering must uncross them: 0 above-left of 3 means 3 is placed left of 2.
    let sizes = vec![(50.0, 20.0); 4];
    let l = layout(
        &sizes,
        &[(0, 3), (1, 2)],
        RankDir::TopBottom,
        Spacing::default(),
    );
    let cx = |i: usize| l.boxes[i].x + l.boxes[i].w / 2.0;
    assert_eq!(cx(0) < cx(1), cx(3) < cx(2));
}

/// PNG signature, IHDR width and height.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

/// Decodes a PNG fully (IDAT checked by the `image` crate) and returns the share of pixels
/// that are not white.
fn ink(bytes: &[u8]) -> f64 {
    let img = image::load_from_memory(bytes).unwrap().to_rgb8();
    let dark = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    dark as f64 / (img.width() * img.height()) as f64
}

/// A light well-formedness check: XML declaration, one `<svg>` root, balanced tags.
fn check_svg(text: &str) {
    assert!(text.starts_with("<?xml"));
    assert!(text.trim_end().ends_with("</svg>"));
    let mut stack: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("unclosed tag");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.ends_with('/') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        if tag.starts_with('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.as_str()),
                "mismatched </{name}>"
            );
        } else {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(text.matches("<svg ").count(), 1);
}

fn no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "temporary file left: {name}");
    }
}

#[test]
fn plot_model_writes_png_svg_and_dot() {
    let d = tmp_dir("model");
    let model = seed_cnn();
    let png = d.join("cnn.png");
    plot_model(&model, &png)
        .show_shapes(true)
        .show_layer_names(true)
        .dpi(72)
        .run()
        .unwrap();
    let bytes = std::fs::read(&png).unwrap();
    let (w, h) = png_size(&bytes);
    // 7 boxes stacked: a tall picture; at 72 dpi one pixel a point.
    assert!((300..900).contains(&w), "width {w}");
    assert!((600..1400).contains(&h), "height {h}");
    assert!(h > w);
    let ink = ink(&bytes);
    assert!(ink > 0.05 && ink < 0.6, "ink {ink}");
    // dpi scales the picture.
    plot_model(&model, d.join("cnn2.png"))
        .show_shapes(true)
        .show_layer_names(true)
        .dpi(144)
        .run()
        .unwrap();
    let (w2, h2) = png_size(&std::fs::read(d.join("cnn2.png")).unwrap());
    assert!(w2.abs_diff(2 * w) <= 2 && h2.abs_diff(2 * h) <= 2);
    // SVG and DOT.
    plot_model(&model, d.join("cnn.svg"))
        .show_shapes(true)
        .run()
        .unwrap();
    let svg = std::fs::read_to_string(d.join("cnn.svg")).unwrap();
    check_svg(&svg);
    assert!(svg.contains("(None, 26, 26, 32)"));
    assert_eq!(svg.matches("<polygon").count(), 6, "one arrowhead per edge");
    plot_model(&model, d.join("cnn.dot")).run().unwrap();
    let dot = std::fs::read_to_string(d.join("cnn.dot")).unwrap();
    assert!(dot.starts_with("digraph G {"));
    assert_eq!(dot.matches(" -> ").count(), 6);
    // Overwriting works and leaves no temporary files.
    plot_model(&model, &png).dpi(72).run().unwrap();
    no_temp_files(&d);
    let _ = std::fs::remove_dir_all(&d);
}

fn mnist_like_history() -> History {
    let mut h = History::new();
    h.epoch = vec![0, 1, 2, 3];
    h.history.insert("loss".into(), vec![0.9, 0.5, 0.35, 0.3]);
    h.history
        .insert("val_loss".into(), vec![0.6, 0.45, 0.4, 0.41]);
    h.history
        .insert("accuracy".into(), vec![0.7, 0.85, 0.9, 0.92]);
    h.history
        .insert("val_accuracy".into(), vec![0.8, 0.86, 0.88, 0.88]);
    h
}

#[test]
fn history_plot_writes_png_and_svg() {
    let d = tmp_dir("curves");
    let h = mnist_like_history();
    let png = d.join("curves.png");
    h.plot(&png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    let (w, h_px) = png_size(&bytes);
    // Two panels side by side at 2 pixels a point.
    assert!(
        (1200..2000).contains(&w) && (400..800).contains(&h_px),
        "{w}x{h_px}"
    );
    let ink = ink(&bytes);
    assert!(ink > 0.02 && ink < 0.5, "ink {ink}");
    h.plot_titled(d.join("curves.svg"), "MNIST <MLP> & co")
        .unwrap();
    let svg = std::fs::read_to_string(d.join("curves.svg")).unwrap();
    check_svg(&svg);
    assert!(svg.contains("MNIST &lt;MLP&gt; &amp; co"));
    for label in ["loss", "accuracy", "epoch", "train", "validation"] {
        assert!(svg.contains(&format!(">{label}<")), "{label}");
    }
    // Unknown extension, empty history, missing directory.
    let e = h.plot(d.join("c.pdf")).unwrap_err().to_string();
    assert!(e.contains("c.pdf") && e.contains(".png or .svg"), "{e}");
    let e = History::new()
        .plot(d.join("e.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    let e = h.plot(d.join("nope/c.png")).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
    no_temp_files(&d);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn read_csv_reads_csvlogger_files() {
    let d = tmp_dir("csv");
    // As Keras's CSVLogger writes it (\r\n line ends, NA for a missing value).
    let p = d.join("h.csv");
    std::fs::write(
        &p,
        "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,1.25,0.6,1e-05\r\n1,0.75,NA,0.7,nan\r\n",
    )
    .unwrap();
    let h = History::read_csv(&p, ',').unwrap();
    assert_eq!(h.epoch, vec![0, 1]);
    assert_eq!(h.get("accuracy").unwrap(), &[0.5, 0.75]);
    assert_eq!(h.get("val_loss").unwrap()[0], 1e-5);
    assert!(h.get("loss").unwrap()[1].is_nan());
    assert!(h.get("val_loss").unwrap()[1].is_nan());
    assert!(h.get("epoch").is_none());
    // Another separator and a quoted header field.
    let p2 = d.join("h2.csv");
    std::fs::write(&p2, "epoch;\"loss\"\n0;2\n1;1\n").unwrap();
    assert_eq!(
        History::read_csv(&p2, ';').unwrap().get("loss").unwrap(),
        &[2.0, 1.0]
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn read_csv_errors_name_the_file_and_line() {
    let d = tmp_dir("csverr");
    let e = History::read_csv(d.join("missing.csv"), ',')
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.csv"), "{e}");
    let cases = [
        ("empty.csv", "", "empty file"),
        (
            "ragged.csv",
            "epoch,loss\n0,1.0\n1,0.5,9\n",
            "line 3: expected 2 fields",
        ),
        (
            "nan.csv",
            "epoch,loss\n0,abc\n",
            "line 2, column \"loss\": \"abc\" is not a number",
        ),
        ("epoch.csv", "epoch,loss\n-1,0.5\n", "line 2: epoch \"-1\""),
        ("header.csv", "epoch,loss\n", "no rows"),
    ];
    for (name, text, want) in cases {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        let e = History::read_csv(&p, ',').unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
