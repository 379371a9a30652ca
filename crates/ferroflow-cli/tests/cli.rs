//! The `ferroflow` binary, run as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ferroflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroflow"))
        .args(args)
        .output()
        .expect("the ferroflow binary runs")
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ff_cli_{name}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A CSVLogger file as Keras writes it.
const CSV: &str = "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.81,0.64,0.9,0.35\r\n1,0.92,0.27,0.93,0.24\r\n2,0.94,0.2,0.94,0.21\r\n";

#[test]
fn plot_writes_png_and_svg() {
    let d = tmp_dir("ok");
    let csv = d.join("history.csv");
    std::fs::write(&csv, CSV).unwrap();
    let png = d.join("curves.png");
    let out = ferroflow(&["plot", s(&csv), "-o", s(&png)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(
        (1000..2500).contains(&w) && (300..1200).contains(&h),
        "{w}x{h}"
    );
    let svg = d.join("curves.svg");
    let out = ferroflow(&["plot", s(&csv), "--output", s(&svg), "--title", "run 1"]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<?xml") && text.trim_end().ends_with("</svg>"));
    assert!(text.contains(">run 1<") && text.contains(">accuracy<"));
    // Atomic writes leave no temporary files.
    for e in std::fs::read_dir(&d).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "{name}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

/// Runs `ferroflow plot` expecting failure with exit status 1 and `want` in the message.
fn fails(args: &[&str], want: &str) {
    let out = ferroflow(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(want),
        "{args:?}: {err}"
    );
}

#[test]
fn plot_errors_are_clear() {
    let d = tmp_dir("err");
    let missing = d.join("missing.csv");
    fails(
        &["plot", s(&missing), "-o", s(&d.join("a.png"))],
        "missing.csv",
    );
    let ragged = d.join("ragged.csv");
    std::fs::write(&ragged, "epoch,loss,val_loss\n0,1.0,1.1\n1,0.5\n").unwrap();
    fails(
        &["plot", s(&ragged), "-o", s(&d.join("a.png"))],
        "ragged.csv: line 3: expected 3 fields as in the header, found 2",
    );
    let good = d.join("good.csv");
    std::fs::write(&good, CSV).unwrap();
    fails(
        &["plot", s(&good), "-o", s(&d.join("a.jpg"))],
        ".png or .svg",
    );
    fails(
        &["plot", s(&good), "-o", s(&d.join("no/such/dir/a.png"))],
        "does not exist",
    );
    // Nothing was written.
    assert!(!d.join("a.png").exists() && !d.join("a.jpg").exists());
    // Usage errors are clap's (exit status 2).
    let out = ferroflow(&["plot", s(&good)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
    let _ = std::fs::remove_dir_all(&d);
}
