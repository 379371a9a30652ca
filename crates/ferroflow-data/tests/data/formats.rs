//! Readers and writers (`ferroflow_data::io`): NumPy, CSV, text, TFRecord, image folders.
//!
//! Expected values come from the formulas that generated each file (see
//! `fixtures/make_fixtures.py`), from hand-built byte layouts, or from TensorFlow's own output,
//! never from the readers under test.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferroflow_core::{DType, Error, Tensor};
use ferroflow_data::io::*;
use ferroflow_data::Element;
use half::{bf16, f16};

/// A scratch folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("ff-formats-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fixtures")
        .join(name)
}

fn err_text<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// NumPy
// ---------------------------------------------------------------------------------------------

/// One tensor of every dtype numpy has, plus a scalar and an empty array.
fn every_dtype() -> Vec<Tensor> {
    vec![
        Tensor::from_vec(
            vec![1.5f32, -2.0, 3.25, 0.0, f32::MAX, f32::MIN_POSITIVE],
            &[2, 3],
        )
        .unwrap(),
        Tensor::from_vec(vec![1e300f64, -0.1], &[2]).unwrap(),
        Tensor::from_vec(vec![f16::from_f32(0.5), f16::from_f32(-65504.0)], &[1, 2]).unwrap(),
        Tensor::from_vec(vec![i32::MIN, 0, i32::MAX, 5], &[2, 2, 1]).unwrap(),
        Tensor::from_vec(vec![i64::MIN, -1, i64::MAX], &[3]).unwrap(),
        Tensor::from_vec((0..=255u8).collect::<Vec<_>>(), &[16, 16]).unwrap(),
        Tensor::from_vec(vec![true, false, true], &[3]).unwrap(),
        Tensor::scalar(2.5f64),
        Tensor::from_vec(Vec::<f32>::new(), &[0, 3]).unwrap(),
    ]
}

fn assert_same(a: &Tensor, b: &Tensor) {
    assert_eq!(a.dtype(), b.dtype());
    assert_eq!(a.shape(), b.shape());
    assert_eq!(a.to_f64_vec(), b.to_f64_vec());
}

#[test]
fn npy_round_trip_every_dtype() {
    let dir = TempDir::new("npy-rt");
    for (i, t) in every_dtype().iter().enumerate() {
        let p = dir.join(&format!("t{i}.npy"));
        write_npy(&p, t).unwrap();
        assert_same(&read_npy(&p).unwrap(), t);
    }
    // i64 extremes survive exactly (to_f64 would round them).
    let t = &every_dtype()[4];
    write_npy(dir.join("i64.npy"), t).unwrap();
    assert_eq!(
        read_npy(dir.join("i64.npy"))
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![i64::MIN, -1, i64::MAX]
    );
    // Atomic writes leave no temporary file behind.
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn npy_header_layout_matches_numpy() {
    let t = Tensor::from_vec(vec![1.5f32, -2.0, 3.25, 0.0, 1.0, 2.0], &[2, 3]).unwrap();
    let b = npy_to_bytes(&t).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hl) % 64, 0, "data is 64-byte aligned");
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
    assert!(header.ends_with('\n'));
    assert_eq!(&b[10 + hl..10 + hl + 4], &1.5f32.to_le_bytes());
    assert_eq!(b.len(), 10 + hl + 24);
    for (t, descr, shape) in [
        (Tensor::from_vec(vec![1u8], &[1]).unwrap(), "|u1", "(1,)"),
        (Tensor::from_vec(vec![true], &[1]).unwrap(), "|b1", "(1,)"),
        (Tensor::scalar(1i64), "<i8", "()"),
        (Tensor::scalar(f16::ONE), "<f2", "()"),
    ] {
        let b = npy_to_bytes(&t).unwrap();
        let h = String::from_utf8_lossy(&b[10..]).into_owned();
        assert!(h.contains(&format!("'descr': '{descr}'")), "{h}");
        assert!(h.contains(&format!("'shape': {shape}")), "{h}");
    }
}

#[test]
fn npy_bfloat16_is_refused_with_a_clear_error() {
    let dir = TempDir::new("npy-bf16");
    let t = Tensor::from_vec(vec![bf16::from_f32(1.0)], &[1]).unwrap();
    let p = dir.join("b.npy");
    let msg = err_text(write_npy(&p, &t));
    assert_has(&msg, &["b.npy", "bfloat16", "float32"]);
    assert!(!p.exists());
}

#[test]
fn npy_files_written_by_numpy() {
    let f32s = read_npy(fixture("f32_2x3.npy")).unwrap();
    assert_eq!(f32s.shape(), &[2, 3]);
    let want: Vec<f32> = (0..6).map(|k| k as f32 * 0.5 - 1.0).collect();
    assert_eq!(f32s.to_vec::<f32>().unwrap(), want);

    let be = read_npy(fixture("f64_be.npy")).unwrap();
    assert_eq!(be.to_vec::<f64>().unwrap(), vec![1.5, -2.25, 1e300]);

    let h = read_npy(fixture("f16.npy")).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    assert_eq!(h.to_f64_vec(), vec![0.5, -1.0, 65504.0, 0.0]);

    let i = read_npy(fixture("i32.npy")).unwrap();
    assert_eq!(i.shape(), &[2, 2]);
    assert_eq!(i.to_vec::<i32>().unwrap(), vec![i32::MIN, 0, 7, i32::MAX]);

    // Fortran order is transposed into row-major: element (a, b, c) = 12a + 4b + c - 5.
    let f = read_npy(fixture("i64_fortran.npy")).unwrap();
    assert_eq!(f.shape(), &[2, 3, 4]);
    let mut want = Vec::new();
    for a in 0..2i64 {
        for b in 0..3 {
            for c in 0..4 {
                want.push(12 * a + 4 * b + c - 5);
            }
        }
    }
    assert_eq!(f.to_vec::<i64>().unwrap(), want);

    let u = read_npy(fixture("u8.npy")).unwrap();
    assert_eq!(u.to_vec::<u8>().unwrap(), vec![0, 51, 102, 153, 204, 255]);
    let b = read_npy(fixture("bool.npy")).unwrap();
    assert_eq!(b.to_vec::<bool>().unwrap(), vec![true, false, false, true]);
    // Widened integer dtypes.
    let i16s = read_npy(fixture("i16_be.npy")).unwrap();
    assert_eq!(i16s.to_vec::<i32>().unwrap(), vec![-300, 2, 32767]);
    let u32s = read_npy(fixture("u32.npy")).unwrap();
    assert_eq!(u32s.to_vec::<i64>().unwrap(), vec![0, 4_294_967_295]);

    let s = read_npy(fixture("scalar.npy")).unwrap();
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(s.to_vec::<f64>().unwrap(), vec![3.25]);
    let e = read_npy(fixture("empty.npy")).unwrap();
    assert_eq!((e.dtype(), e.shape()), (DType::F32, &[0usize, 3][..]));
    for v in ["v2.npy", "v3.npy"] {
        let t = read_npy(fixture(v)).unwrap();
        assert_eq!(t.shape(), &[2, 2]);
        assert_eq!(t.to_vec::<i32>().unwrap(), vec![1, 2, 3, 4]);
    }
}

#[test]
fn npz_written_by_numpy_stored_and_deflated() {
    let a: Vec<f32> = (0..12).map(|k| k as f32 / 4.0).collect();
    for name in ["stored.npz", "deflated.npz"] {
        let m = load_npz(fixture(name)).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(m["a"].shape(), &[3, 4]);
        assert_eq!(m["a"].to_vec::<f32>().unwrap(), a);
        assert_eq!(m["b"].to_vec::<u8>().unwrap(), vec![1, 0, 1]);
    }
}

#[test]
fn npz_round_trip_every_dtype() {
    let dir = TempDir::new("npz-rt");
    let ts = every_dtype();
    let keys: Vec<String> = (0..ts.len()).map(|i| format!("arr_{i}")).collect();
    let p = dir.join("all.npz");
    save_npz(&p, keys.iter().zip(ts.iter())).unwrap();
    let m = load_npz(&p).unwrap();
    assert_eq!(m.len(), ts.len());
    for (k, t) in keys.iter().zip(&ts) {
        assert_same(&m[k], t);
    }
    // Entries are stored, as numpy.savez writes them.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&p).unwrap()).unwrap();
    let entry = zip.by_name("arr_0.npy").unwrap();
    assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
}

/// A `.npy` file's bytes with a hand-written header.
fn npy_with_header(dict: &str, version: u8, data: &[u8]) -> Vec<u8> {
    let mut h = dict.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY".to_vec();
    b.extend([version, 0]);
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    b.extend(data);
    b
}

#[test]
fn npy_corrupt_files_name_the_file_and_place() {
    let dir = TempDir::new("npy-bad");
    let p = dir.join("bad.npy");
    std::fs::write(&p, b"hello, not numpy at all").unwrap();
    assert_has(&err_text(read_npy(&p)), &["bad.npy", "byte 0", "magic"]);
    std::fs::write(&p, b"\x93NUMPY\x01").unwrap();
    assert_has(
        &err_text(read_npy(&p)),
        &["bad.npy", "byte 6", "truncated header"],
    );
    let p = dir.join("huge.npy");
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 8), }";
    std::fs::write(&p, npy_with_header(dict, 1, &[])).unwrap();
    assert_has(&err_text(read_npy(&p)), &["huge.npy", "too large"]);

    // Truncated data: the numpy file's data starts at byte 128 and needs 24 bytes.
    let good = std::fs::read(fixture("f32_2x3.npy")).unwrap();
    let p = dir.join("short.npy");
    std::fs::write(&p, &good[..good.len() - 5]).unwrap();
    assert_has(
        &err_text(read_npy(&p)),
        &[
            "short.npy",
            "byte 128",
            "truncated data",
            "24 bytes",
            "19 present",
        ],
    );
    std::fs::write(&p, &good[..40]).unwrap();
    assert_has(
        &err_text(read_npy(&p)),
        &["short.npy", "byte 10", "truncated header"],
    );

    let long = dir.join("long.npy");
    let mut extra = good.clone();
    extra.extend([0, 0]);
    std::fs::write(&long, &extra).unwrap();
    assert_has(
        &err_text(read_npy(&long)),
        &["long.npy", "byte 152", "unexpected bytes"],
    );

    let p = dir.join("complex.npy");
    let dict = "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }";
    std::fs::write(&p, npy_with_header(dict, 1, &[0; 8])).unwrap();
    assert_has(
        &err_text(read_npy(&p)),
        &[
            "complex.npy",
            "header at byte 10",
            "unsupported dtype '<c8'",
        ],
    );
    let p = dir.join("struct.npy");
    let dict = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }";
    std::fs::write(&p, npy_with_header(dict, 1, &[0; 4])).unwrap();
    assert_has(&err_text(read_npy(&p)), &["struct.npy", "structured"]);
    let p = dir.join("u64.npy");
    let dict = "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }";
    std::fs::write(&p, npy_with_header(dict, 1, &[0; 8])).unwrap();
    assert_has(
        &err_text(read_npy(&p)),
        &["u64.npy", "unsupported dtype '<u8'"],
    );
    let p = dir.join("v9.npy");
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
    std::fs::write(&p, npy_with_header(dict, 9, &[0; 4])).unwrap();
    assert_has(
        &err_text(read_npy(&p)),
        &["v9.npy", "byte 6", "version 9.0"],
    );
    let p = dir.join("noshape.npy");
    let dict = "{'descr': '<f4', 'fortran_order': False, }";
    std::fs::write(&p, npy_with_header(dict, 1, &[0; 4])).unwrap();
    assert_has(&err_text(read_npy(&p)), &["noshape.npy", "lacks 'shape'"]);
    // A hand-written header in numpy's format is read (checks the writer-independent path).
    let p = dir.join("ok.npy");
    let dict = "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }";
    let data = [(-7i32).to_be_bytes(), 9i32.to_be_bytes()].concat();
    std::fs::write(&p, npy_with_header(dict, 1, &data)).unwrap();
    assert_eq!(read_npy(&p).unwrap().to_vec::<i32>().unwrap(), vec![-7, 9]);

    assert_has(
        &err_text(read_npy(dir.join("missing.npy"))),
        &["missing.npy"],
    );
    assert_has(
        &err_text(write_npy(
            dir.join("no/such/dir/x.npy"),
            &Tensor::scalar(1f32),
        )),
        &["x.npy"],
    );
}

#[test]
fn npz_corrupt_files_name_the_file_and_entry() {
    let dir = TempDir::new("npz-bad");
    let p = dir.join("notzip.npz");
    std::fs::write(&p, b"PK but not really a zip").unwrap();
    assert_has(&err_text(load_npz(&p)), &["notzip.npz", "zip"]);

    let good = std::fs::read(fixture("stored.npz")).unwrap();
    let p = dir.join("cut.npz");
    std::fs::write(&p, &good[..good.len() / 2]).unwrap();
    assert_has(&err_text(load_npz(&p)), &["cut.npz"]);

    // A zip whose entry is not a .npy file.
    let p = dir.join("inner.npz");
    {
        let f = std::fs::File::create(&p).unwrap();
        let mut z = zip::ZipWriter::new(f);
        z.start_file("x.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, b"garbage bytes").unwrap();
        z.finish().unwrap();
    }
    assert_has(
        &err_text(load_npz(&p)),
        &["inner.npz:x.npy", "byte 0", "magic"],
    );
}

/// A python interpreter with numpy (`FERROFLOW_PYTHON`, the project's venv, then `python3`).
fn python_with(module: &str) -> Option<String> {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(p) = std::env::var("FERROFLOW_PYTHON") {
        candidates.push(p);
    }
    candidates.push("/work/venvs/tf/bin/python".into());
    candidates.push("python3".into());
    candidates.into_iter().find(|c| {
        Command::new(c)
            .args(["-c", &format!("import {module}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

fn run_python(py: &str, script: &str, dir: &Path) {
    let out = Command::new(py)
        .args(["-c", script])
        .arg(dir)
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn npy_interop_with_numpy() {
    let Some(py) = python_with("numpy") else {
        println!("skipping npy_interop_with_numpy: no python3 with numpy (set FERROFLOW_PYTHON)");
        return;
    };
    let dir = TempDir::new("npy-numpy");
    let f32s: Vec<f32> = (0..6).map(|k| k as f32 * 0.25 - 0.5).collect();
    let tensors = [
        ("f32", Tensor::from_vec(f32s, &[2, 3]).unwrap()),
        (
            "f64",
            Tensor::from_vec(vec![1e300f64, -0.1, 2.0], &[3]).unwrap(),
        ),
        (
            "f16",
            Tensor::from_vec(vec![f16::from_f32(0.5), f16::from_f32(-2.0)], &[2]).unwrap(),
        ),
        (
            "i32",
            Tensor::from_vec(vec![i32::MIN, i32::MAX], &[2, 1]).unwrap(),
        ),
        (
            "i64",
            Tensor::from_vec(vec![i64::MIN, i64::MAX, 0], &[3]).unwrap(),
        ),
        (
            "u8",
            Tensor::from_vec((0..=255u8).collect::<Vec<_>>(), &[16, 16]).unwrap(),
        ),
        ("bool", Tensor::from_vec(vec![true, false], &[2]).unwrap()),
        ("scalar", Tensor::scalar(3.5f64)),
    ];
    for (name, t) in &tensors {
        write_npy(dir.join(&format!("{name}.npy")), t).unwrap();
    }
    save_npz(
        dir.join("pair.npz"),
        [("x", &tensors[0].1), ("y", &tensors[6].1)],
    )
    .unwrap();
    let script = r#"
import sys, os, numpy as np
d = sys.argv[1]
def load(n): return np.load(os.path.join(d, n + ".npy"))
x = load("f32"); assert x.dtype == np.float32 and x.shape == (2, 3)
assert (x.ravel() == np.arange(6, dtype=np.float32) * 0.25 - 0.5).all()
x = load("f64"); assert x.dtype == np.float64 and list(x) == [1e300, -0.1, 2.0]
x = load("f16"); assert x.dtype == np.float16 and list(x) == [0.5, -2.0]
x = load("i32"); assert x.dtype == np.int32 and x.shape == (2, 1) and x.ravel().tolist() == [-2**31, 2**31 - 1]
x = load("i64"); assert x.dtype == np.int64 and x.tolist() == [-2**63, 2**63 - 1, 0]
x = load("u8"); assert x.dtype == np.uint8 and (x.ravel() == np.arange(256)).all()
x = load("bool"); assert x.dtype == np.bool_ and x.tolist() == [True, False]
x = load("scalar"); assert x.shape == () and x.dtype == np.float64 and x == 3.5
z = np.load(os.path.join(d, "pair.npz"))
assert sorted(z.files) == ["x", "y"] and z["x"].shape == (2, 3) and z["y"].tolist() == [True, False]
# numpy writes, ferroflow reads back.
np.save(os.path.join(d, "py_be.npy"), np.arange(6, dtype=">f4").reshape(3, 2))
np.save(os.path.join(d, "py_fortran.npy"), np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3)))
np.savez_compressed(os.path.join(d, "py.npz"), h=np.array([1.5, -3], dtype=np.float16), b=np.array([[True], [False]]))
# Every dtype, by numpy: value k of dtype t is (k * 3 - 4) cast to t.
for t in ["<f4", "<f8", "<f2", "<i4", "<i8", "|u1", "|b1"]:
    np.save(os.path.join(d, "py_" + t[1:] + ".npy"), (np.arange(5) * 3 - 4).astype(t))
"#;
    run_python(&py, script, &dir.0);
    let be = read_npy(dir.join("py_be.npy")).unwrap();
    assert_eq!(be.shape(), &[3, 2]);
    assert_eq!(
        be.to_vec::<f32>().unwrap(),
        vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    );
    let f = read_npy(dir.join("py_fortran.npy")).unwrap();
    assert_eq!(f.shape(), &[2, 3]);
    assert_eq!(f.to_vec::<i32>().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    let z = load_npz(dir.join("py.npz")).unwrap();
    assert_eq!(z["h"].to_f64_vec(), vec![1.5, -3.0]);
    assert_eq!(z["b"].shape(), &[2, 1]);
    assert_eq!(z["b"].to_vec::<bool>().unwrap(), vec![true, false]);
    for (t, dtype) in [
        ("f4", DType::F32),
        ("f8", DType::F64),
        ("f2", DType::F16),
        ("i4", DType::I32),
        ("i8", DType::I64),
        ("u1", DType::U8),
        ("b1", DType::Bool),
    ] {
        let x = read_npy(dir.join(&format!("py_{t}.npy"))).unwrap();
        assert_eq!((x.dtype(), x.shape()), (dtype, &[5usize][..]));
        let want: Vec<f64> = (0..5)
            .map(|k| {
                let v = (k * 3 - 4) as f64;
                match dtype {
                    DType::U8 => v.rem_euclid(256.0),
                    DType::Bool => (v != 0.0) as u8 as f64,
                    _ => v,
                }
            })
            .collect();
        assert_eq!(x.to_f64_vec(), want, "{t}");
    }
}

// ---------------------------------------------------------------------------------------------
// TFRecord
// ---------------------------------------------------------------------------------------------

/// TFRecord's mask, written as its specification states it.
#[allow(clippy::manual_rotate)]
fn mask(c: u32) -> u32 {
    ((c >> 15) | (c << 17)).wrapping_add(0xa282_ead8)
}

#[test]
fn crc32c_known_vectors() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
    // RFC 3720 (iSCSI) test vectors: 32 bytes of zeros and of 0xFF.
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    assert_eq!(masked_crc32c(b"123456789"), mask(0xE306_9283));
}

#[test]
fn tfrecord_framing_round_trip() {
    let dir = TempDir::new("tfr");
    let p = dir.join("r.tfrecord");
    write_tfrecord(&p, [&b"abc"[..], b"", b"hello"]).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes.len(), 3 * 16 + 3 + 5);
    assert_eq!(&bytes[..8], &3u64.to_le_bytes());
    assert_eq!(
        &bytes[8..12],
        &mask(crc32c(&3u64.to_le_bytes())).to_le_bytes()
    );
    assert_eq!(&bytes[12..15], b"abc");
    assert_eq!(&bytes[15..19], &mask(crc32c(b"abc")).to_le_bytes());
    assert_eq!(&bytes[19..27], &0u64.to_le_bytes());
    let recs = read_tfrecord(&p).unwrap();
    assert_eq!(recs, vec![b"abc".to_vec(), vec![], b"hello".to_vec()]);
    // The writer streams and renames on close.
    let p2 = dir.join("w.tfrecord");
    let mut w = TfRecordWriter::create(&p2).unwrap();
    w.write(b"one").unwrap();
    assert!(!p2.exists());
    w.close().unwrap();
    assert_eq!(read_tfrecord(&p2).unwrap(), vec![b"one".to_vec()]);
    let ds = TfRecordDataset::new([&p, &p2]);
    let got: Vec<Vec<u8>> = ds
        .iter()
        .map(|e| e.unwrap().tensor().unwrap().to_vec::<u8>().unwrap())
        .collect();
    assert_eq!(got.len(), 4);
    assert_eq!(got[3], b"one");
}

#[test]
fn tfrecord_corruption_names_file_and_record() {
    let dir = TempDir::new("tfr-bad");
    let p = dir.join("good.tfrecord");
    write_tfrecord(&p, [&b"abc"[..], b"hello"]).unwrap();
    let good = std::fs::read(&p).unwrap();
    // Second record starts at 16 + 3 = 19; its data at 31..36.
    let mut bad = good.clone();
    bad[31] ^= 1;
    let q = dir.join("data.tfrecord");
    std::fs::write(&q, &bad).unwrap();
    assert_has(
        &err_text(read_tfrecord(&q)),
        &["data.tfrecord", "record at byte 19", "bad CRC of the data"],
    );
    // The reader yields the good record first, then the error, then stops.
    let items: Vec<_> = TfRecordReader::open(&q).unwrap().collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap(), b"abc");
    let mut bad = good.clone();
    bad[8] ^= 0x80;
    std::fs::write(&q, &bad).unwrap();
    assert_has(
        &err_text(read_tfrecord(&q)),
        &["data.tfrecord", "record at byte 0", "bad CRC of the length"],
    );
    let mut bad = good.clone();
    bad[good.len() - 1] ^= 0xFF;
    std::fs::write(&q, &bad).unwrap();
    assert_has(
        &err_text(read_tfrecord(&q)),
        &["record at byte 19", "bad CRC"],
    );
    std::fs::write(&q, &good[..good.len() - 2]).unwrap();
    assert_has(
        &err_text(read_tfrecord(&q)),
        &["record at byte 19", "truncated"],
    );
    std::fs::write(&q, &good[..25]).unwrap();
    assert_has(
        &err_text(read_tfrecord(&q)),
        &["record at byte 19", "truncated"],
    );
    // A dataset surfaces the error as an element.
    let errs = TfRecordDataset::new([&q])
        .iter()
        .filter(|e| e.is_err())
        .count();
    assert_eq!(errs, 1);
}

#[test]
fn tf_train_example_written_by_tensorflow() {
    let recs = read_tfrecord(fixture("examples.tfrecord")).unwrap();
    assert_eq!(recs.len(), 3);
    for (i, r) in recs.iter().enumerate() {
        let ex = Example::decode(r).unwrap();
        assert_eq!(ex.features["x"], Feature::Float(vec![i as f32 * 0.5, -1.0]));
        assert_eq!(ex.features["label"], Feature::Int64(vec![i as i64 - 1]));
        assert_eq!(
            ex.features["name"],
            Feature::Bytes(vec![format!("item{i}").into_bytes()])
        );
        let el = ex.to_element().unwrap();
        let d = el.dict().unwrap();
        assert_eq!(d["x"].tensor().unwrap().dtype(), DType::F32);
        assert_eq!(
            d["label"].tensor().unwrap().to_vec::<i64>().unwrap(),
            vec![i as i64 - 1]
        );
        // Our encoding (entries in name order) decodes to the same Example.
        assert_eq!(Example::decode(&ex.encode()).unwrap(), ex);
    }
    let ds = TfRecordDataset::examples([fixture("examples.tfrecord")]);
    let els: Vec<Element> = ds.iter().map(|e| e.unwrap()).collect();
    assert_eq!(els.len(), 3);
    let d = els[2].dict().unwrap();
    assert_eq!(
        d["x"].tensor().unwrap().to_vec::<f32>().unwrap(),
        vec![1.0, -1.0]
    );
    assert_eq!(
        d["name"].tensor().unwrap().to_vec::<u8>().unwrap(),
        b"item2"
    );
}

#[test]
fn example_codec_unpacked_empty_and_malformed() {
    // Hand-built: Example{features{feature{"k": Feature{int64_list{value: 5, value: 7}}}}}
    // with unpacked varints.
    let int64_list = [0x08, 0x05, 0x08, 0x07];
    let feature = [&[0x1a, 4][..], &int64_list].concat();
    let entry = [&[0x0a, 1, b'k', 0x12, feature.len() as u8][..], &feature].concat();
    let features = [&[0x0a, entry.len() as u8][..], &entry].concat();
    let example = [&[0x0a, features.len() as u8][..], &features].concat();
    let ex = Example::decode(&example).unwrap();
    assert_eq!(ex.features["k"], Feature::Int64(vec![5, 7]));
    // Unpacked float: field 1, wire type 5.
    let float_list = [&[0x0d][..], &2.5f32.to_le_bytes()].concat();
    let feature = [&[0x12, float_list.len() as u8][..], &float_list].concat();
    let entry = [&[0x0a, 1, b'f', 0x12, feature.len() as u8][..], &feature].concat();
    let features = [&[0x0a, entry.len() as u8][..], &entry].concat();
    let example = [&[0x0a, features.len() as u8][..], &features].concat();
    assert_eq!(
        Example::decode(&example).unwrap().features["f"],
        Feature::Float(vec![2.5])
    );

    let mut ex = Example::default();
    ex.features.insert("e".into(), Feature::Float(vec![]));
    ex.features
        .insert("neg".into(), Feature::Int64(vec![-1, i64::MIN, i64::MAX]));
    ex.features
        .insert("b".into(), Feature::Bytes(vec![vec![], vec![0, 255]]));
    assert_eq!(Example::decode(&ex.encode()).unwrap(), ex);
    assert!(ex.features["b"].to_tensor().is_err());

    let enc = ex.encode();
    let msg = err_text(Example::decode(&enc[..enc.len() - 3]));
    assert_has(&msg, &["Example::decode", "truncated"]);
}

#[test]
fn tfrecord_interop_with_tensorflow() {
    let Some(py) = python_with("tensorflow") else {
        println!("skipping tfrecord_interop_with_tensorflow: no python3 with tensorflow");
        return;
    };
    let dir = TempDir::new("tfr-tf");
    let mut recs = Vec::new();
    for i in 0..4 {
        let mut ex = Example::default();
        ex.features
            .insert("v".into(), Feature::Float(vec![i as f32, 0.25]));
        ex.features
            .insert("i".into(), Feature::Int64(vec![-(i as i64) * 1000]));
        ex.features
            .insert("s".into(), Feature::Bytes(vec![b"ab".to_vec()]));
        recs.push(ex.encode());
    }
    write_tfrecord(dir.join("ours.tfrecord"), &recs).unwrap();
    let script = r#"
import sys, os
import tensorflow as tf
d = sys.argv[1]
rs = list(tf.data.TFRecordDataset(os.path.join(d, "ours.tfrecord")).as_numpy_iterator())
assert len(rs) == 4
for i, r in enumerate(rs):
    ex = tf.train.Example.FromString(r)
    f = ex.features.feature
    assert list(f["v"].float_list.value) == [float(i), 0.25]
    assert list(f["i"].int64_list.value) == [-i * 1000]
    assert list(f["s"].bytes_list.value) == [b"ab"]
"#;
    run_python(&py, script, &dir.0);
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

fn lines_of(ds: &ferroflow_data::Dataset) -> Vec<String> {
    ds.iter()
        .map(|e| line_to_string(e.unwrap().tensor().unwrap()).unwrap())
        .collect()
}

#[test]
fn text_lines() {
    let dir = TempDir::new("text");
    let a = dir.join("a.txt");
    std::fs::write(&a, "first\r\n\nthird é\nlast without newline").unwrap();
    let b = dir.join("b.txt");
    std::fs::write(&b, "b1\n").unwrap();
    let want = ["first", "", "third é", "last without newline"];
    assert_eq!(read_lines(&a).unwrap(), want);
    let ds = TextLineDataset::new([&a, &b]).build().unwrap();
    assert_eq!(lines_of(&ds), [&want[..], &["b1"]].concat());
    // A line is a rank-1 uint8 tensor of its UTF-8 bytes.
    let e = ds.iter().nth(2).unwrap().unwrap();
    let t = e.tensor().unwrap();
    assert_eq!((t.dtype(), t.shape()), (DType::U8, &[8usize][..]));
    assert_eq!(t.to_vec::<u8>().unwrap(), "third é".as_bytes());
    // Two passes give the same lines.
    assert_eq!(lines_of(&ds), lines_of(&ds));

    let gz = dir.join("c.txt.gz");
    {
        let f = std::fs::File::create(&gz).unwrap();
        let mut w = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        std::io::Write::write_all(&mut w, b"x\ny\n").unwrap();
        w.finish().unwrap();
    }
    let ds = TextLineDataset::new([&gz])
        .compression_type("GZIP")
        .build()
        .unwrap();
    assert_eq!(lines_of(&ds), ["x", "y"]);
    assert!(TextLineDataset::new([&gz])
        .compression_type("LZ4")
        .build()
        .is_err());
}

#[test]
fn text_errors_name_file_and_line() {
    let dir = TempDir::new("text-bad");
    let p = dir.join("latin1.txt");
    std::fs::write(&p, b"ok\nbad \xe9 byte\n").unwrap();
    assert_has(
        &err_text(read_lines(&p)),
        &["latin1.txt", "line 2", "UTF-8"],
    );
    let missing = dir.join("missing.txt");
    let ds = TextLineDataset::new([&missing]).build().unwrap();
    let first = ds.iter().next().unwrap();
    assert_has(&err_text(first), &["missing.txt"]);
    assert!(line_to_string(&Tensor::scalar(1f32)).is_err());
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

fn batch_parts(e: &Element) -> (std::collections::BTreeMap<String, Element>, Tensor) {
    let t = e.tuple().unwrap();
    (t[0].dict().unwrap().clone(), t[1].tensor().unwrap().clone())
}

#[test]
fn csv_types_labels_and_batches() {
    let dir = TempDir::new("csv");
    let p = dir.join("d.csv");
    std::fs::write(
        &p,
        "small,big,ratio,huge,label\n\
         1,3000000000,0.5,1e300,0\n\
         -2,4,1,2,1\n\
         ,5,,3,0\n\
         4,6,2.5,4,1\n\
         5,7,3,5,1\n",
    )
    .unwrap();
    let cols = load_csv(&p).unwrap();
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["small", "big", "ratio", "huge", "label"]);
    let dtypes: Vec<DType> = cols.iter().map(|(_, t)| t.dtype()).collect();
    assert_eq!(
        dtypes,
        [DType::I32, DType::I64, DType::F32, DType::F64, DType::I32]
    );
    // Empty fields are 0.
    assert_eq!(cols[0].1.to_vec::<i32>().unwrap(), vec![1, -2, 0, 4, 5]);
    assert_eq!(
        cols[2].1.to_vec::<f32>().unwrap(),
        vec![0.5, 1.0, 0.0, 2.5, 3.0]
    );
    assert_eq!(cols[1].1.to_vec::<i64>().unwrap()[0], 3_000_000_000);

    let ds = make_csv_dataset(&p, 2)
        .label_name("label")
        .num_epochs(Some(1))
        .shuffle(false)
        .build()
        .unwrap();
    assert_eq!(ds.cardinality(), Some(3));
    let batches: Vec<Element> = ds.iter().map(|e| e.unwrap()).collect();
    assert_eq!(batches.len(), 3);
    let (f, l) = batch_parts(&batches[0]);
    assert_eq!(
        f.keys().collect::<Vec<_>>(),
        ["big", "huge", "ratio", "small"]
    );
    assert_eq!(
        f["small"].tensor().unwrap().to_vec::<i32>().unwrap(),
        vec![1, -2]
    );
    assert_eq!(
        f["huge"].tensor().unwrap().to_vec::<f64>().unwrap(),
        vec![1e300, 2.0]
    );
    assert_eq!(l.to_vec::<i32>().unwrap(), vec![0, 1]);
    let (_, l) = batch_parts(&batches[2]);
    assert_eq!(
        l.shape(),
        &[1],
        "the last batch is kept with num_epochs set"
    );

    // Default num_epochs=None repeats forever, batches always full (drop_remainder).
    let ds = make_csv_dataset(&p, 2)
        .label_name("label")
        .shuffle(false)
        .build()
        .unwrap();
    assert_eq!(ds.cardinality(), None);
    let labels: Vec<i32> = ds
        .iter()
        .take(5)
        .flat_map(|e| batch_parts(&e.unwrap()).1.to_vec::<i32>().unwrap())
        .collect();
    assert_eq!(labels, vec![0, 1, 0, 1, 1, 0, 1, 0, 1, 1]);

    // Without a label the element is the features dict.
    let ds = make_csv_dataset(&p, 5)
        .num_epochs(Some(1))
        .select_columns(["ratio", "small"])
        .build()
        .unwrap();
    let e = ds.iter().next().unwrap().unwrap();
    assert_eq!(
        e.dict().unwrap().keys().collect::<Vec<_>>(),
        ["ratio", "small"]
    );
}

#[test]
fn csv_shuffle_is_seeded_and_a_permutation() {
    let dir = TempDir::new("csv-shuffle");
    let p = dir.join("s.csv");
    let mut text = String::from("x,label\n");
    for i in 0..50 {
        text.push_str(&format!("{},{}\n", i * 2, i));
    }
    std::fs::write(&p, text).unwrap();
    let run = |seed: u64| -> Vec<Vec<i32>> {
        let ds = make_csv_dataset(&p, 7)
            .label_name("label")
            .num_epochs(Some(2))
            .shuffle_seed(seed)
            .shuffle_buffer_size(16)
            .build()
            .unwrap();
        let mut epochs = vec![vec![]];
        for e in ds.iter() {
            let (f, l) = batch_parts(&e.unwrap());
            let x = f["x"].tensor().unwrap().to_vec::<i32>().unwrap();
            let l = l.to_vec::<i32>().unwrap();
            for (x, l) in x.iter().zip(&l) {
                assert_eq!(*x, 2 * l, "features stay with their label");
                if epochs.last().unwrap().len() == 50 {
                    epochs.push(vec![]);
                }
                epochs.last_mut().unwrap().push(*l);
            }
        }
        epochs
    };
    let a = run(7);
    assert_eq!(a.len(), 2);
    for ep in &a {
        let mut s = ep.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
    }
    assert_ne!(a[0], a[1], "reshuffled each epoch");
    assert_ne!(a[0], (0..50).collect::<Vec<_>>());
    assert_eq!(a, run(7), "same seed, same order");
    assert_ne!(a, run(8));
}

#[test]
fn csv_quotes_delimiters_and_options() {
    let dir = TempDir::new("csv-opts");
    let p = dir.join("q.csv");
    std::fs::write(&p, "\"a,1\";b\r\n\"1\";\"2.5\"\r\n\r\n-3;NA\r\n").unwrap();
    let cols = make_csv_dataset(&p, 1)
        .field_delim(';')
        .na_value("NA")
        .load()
        .unwrap();
    assert_eq!(cols[0].0, "a,1");
    assert_eq!(cols[0].1.to_vec::<i32>().unwrap(), vec![1, -3]);
    assert_eq!(cols[1].1.to_vec::<f32>().unwrap(), vec![2.5, 0.0]);

    let p = dir.join("nohead.csv");
    std::fs::write(&p, "1,2\n3,4\n").unwrap();
    let cols = make_csv_dataset(&p, 1)
        .header(false)
        .column_names(["u", "v"])
        .load()
        .unwrap();
    assert_eq!(cols[1].1.to_vec::<i32>().unwrap(), vec![2, 4]);
    assert!(make_csv_dataset(&p, 1).header(false).load().is_err());

    let gz = dir.join("z.csv.gz");
    {
        let f = std::fs::File::create(&gz).unwrap();
        let mut w = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        std::io::Write::write_all(&mut w, b"a,b\n1,2.5\n").unwrap();
        w.finish().unwrap();
    }
    let cols = make_csv_dataset(&gz, 1)
        .compression_type("GZIP")
        .load()
        .unwrap();
    assert_eq!(cols[1].1.to_vec::<f32>().unwrap(), vec![2.5]);
    assert_has(
        &err_text(make_csv_dataset(&p, 1).compression_type("GZIP").load()),
        &["nohead.csv", "gzip"],
    );
}

#[test]
fn csv_errors_name_file_and_line() {
    let dir = TempDir::new("csv-bad");
    let p = dir.join("ragged.csv");
    std::fs::write(&p, "a,b,c\n1,2,3\n4,5\n").unwrap();
    assert_has(
        &err_text(make_csv_dataset(&p, 2).build()),
        &["ragged.csv", "line 3", "ragged row", "2 fields, expected 3"],
    );
    let p = dir.join("text.csv");
    std::fs::write(&p, "name,x\nbob,1\nann,2\n").unwrap();
    assert_has(
        &err_text(make_csv_dataset(&p, 2).build()),
        &["text.csv", "line 2", "'name'", "'bob'", "string dtype"],
    );
    // Selecting the string column out makes it fine.
    assert!(make_csv_dataset(&p, 2)
        .select_columns(["x"])
        .build()
        .is_ok());
    // A value past the inference window that does not fit.
    let p = dir.join("late.csv");
    std::fs::write(&p, "x\n1\n2\n2.5\n").unwrap();
    assert_has(
        &err_text(
            make_csv_dataset(&p, 2)
                .num_rows_for_inference(Some(2))
                .build(),
        ),
        &["late.csv", "line 4", "'2.5'", "int32"],
    );
    let p = dir.join("quote.csv");
    std::fs::write(&p, "x,y\n1,\"open\n2,3\n").unwrap();
    assert_has(
        &err_text(make_csv_dataset(&p, 2).build()),
        &["quote.csv", "line 2", "unterminated"],
    );
    assert_has(
        &err_text(
            make_csv_dataset(dir.join("text.csv"), 2)
                .label_name("nope")
                .select_columns(["x"])
                .build(),
        ),
        &["label_name 'nope'"],
    );
    let p = dir.join("dup.csv");
    std::fs::write(&p, "x,x\n1,2\n").unwrap();
    assert_has(&err_text(make_csv_dataset(&p, 2).build()), &["duplicate"]);
    assert_has(
        &err_text(make_csv_dataset(dir.join("none.csv"), 2).build()),
        &["none.csv"],
    );
}

// ---------------------------------------------------------------------------------------------
// Image folders
// ---------------------------------------------------------------------------------------------

/// Writes a `w` × `h` RGB PNG filled with `color`.
fn png(path: &Path, w: u32, h: u32, color: [u8; 3]) {
    image::RgbImage::from_pixel(w, h, image::Rgb(color))
        .save(path)
        .unwrap();
}

/// The class folder's fill color: class k → (40k + 10, 200 - 40k, 7).
fn class_color(k: usize) -> [u8; 3] {
    [40 * k as u8 + 10, 200 - 40 * k as u8, 7]
}

fn image_tree(name: &str, per_class: &[usize]) -> TempDir {
    let dir = TempDir::new(name);
    let classes = ["cat", "dog", "eel"];
    for (k, &n) in per_class.iter().enumerate() {
        let cdir = dir.join(classes[k]);
        std::fs::create_dir_all(&cdir).unwrap();
        for i in 0..n {
            // Varying sizes; all resized to the requested size.
            png(
                &cdir.join(format!("img{i}.png")),
                5 + i as u32,
                3 + k as u32,
                class_color(k),
            );
        }
        std::fs::write(cdir.join("notes.txt"), "ignored").unwrap();
    }
    dir
}

#[test]
fn image_folder_labels_sizes_and_batches() {
    let dir = image_tree("img", &[3, 4, 2]);
    let ds = image_dataset_from_directory(&dir.0)
        .image_size(6, 8)
        .batch_size(Some(4))
        .seed(1)
        .build()
        .unwrap();
    assert_eq!(ds.class_names, ["cat", "dog", "eel"]);
    assert_eq!(ds.file_paths.len(), 9);
    assert_eq!(ds.dataset.cardinality(), Some(3));
    let mut counts = [0usize; 3];
    let mut sizes = Vec::new();
    for e in ds.dataset.iter() {
        let e = e.unwrap();
        let t = e.tuple().unwrap();
        let (x, y) = (t[0].tensor().unwrap(), t[1].tensor().unwrap());
        let b = x.shape()[0];
        sizes.push(b);
        assert_eq!(x.shape(), &[b, 6, 8, 3]);
        assert_eq!((x.dtype(), y.dtype()), (DType::F32, DType::I32));
        let px = x.to_vec::<f32>().unwrap();
        for (i, &label) in y.to_vec::<i32>().unwrap().iter().enumerate() {
            counts[label as usize] += 1;
            // Each image is its class's constant color, whatever the resize.
            let c = class_color(label as usize);
            let img = &px[i * 144..(i + 1) * 144];
            for p in img.chunks(3) {
                assert_eq!(p, [c[0] as f32, c[1] as f32, c[2] as f32]);
            }
        }
    }
    assert_eq!(sizes, [4, 4, 1]);
    assert_eq!(counts, [3, 4, 2]);

    // Categorical labels, single images (batch_size None), grayscale.
    let ds = image_dataset_from_directory(&dir.0)
        .image_size(2, 2)
        .batch_size(None)
        .label_mode("categorical")
        .color_mode("grayscale")
        .shuffle(false)
        .build()
        .unwrap();
    let items: Vec<Element> = ds.dataset.iter().map(|e| e.unwrap()).collect();
    assert_eq!(items.len(), 9);
    let t = items[3].tuple().unwrap();
    assert_eq!(t[0].tensor().unwrap().shape(), &[2, 2, 1]);
    // Unshuffled order: cat ×3 then dog.
    assert_eq!(
        t[1].tensor().unwrap().to_vec::<f32>().unwrap(),
        vec![0.0, 1.0, 0.0]
    );
    // Binary needs two classes.
    assert_has(
        &err_text(
            image_dataset_from_directory(&dir.0)
                .label_mode("binary")
                .build(),
        ),
        &["binary", "exactly 2"],
    );
    let ds = image_dataset_from_directory(&dir.0)
        .class_names(["eel", "dog"])
        .build();
    assert_has(&err_text(ds), &["class_names"]);
}

#[test]
fn image_folder_bilinear_resize_matches_tensorflow() {
    let dir = TempDir::new("img-resize");
    std::fs::create_dir_all(dir.join("only")).unwrap();
    let mut img = image::GrayImage::new(3, 2);
    for (i, v) in [0u8, 10, 40, 20, 30, 50].iter().enumerate() {
        img.put_pixel(i as u32 % 3, i as u32 / 3, image::Luma([*v]));
    }
    img.save(dir.join("only/a.png")).unwrap();
    let get = |h: usize, w: usize, interp: &str| -> Vec<f32> {
        let ds = image_dataset_from_directory(&dir.0)
            .image_size(h, w)
            .color_mode("grayscale")
            .interpolation(interp)
            .label_mode("none")
            .build()
            .unwrap();
        let e = ds.dataset.iter().next().unwrap().unwrap();
        e.tensor().unwrap().to_vec::<f32>().unwrap()
    };
    // tf.image.resize(x, (4, 5), "bilinear") on [[0, 10, 40], [20, 30, 50]], TF 2.21.
    let want = [
        [0.0, 4.0, 10.0, 28.0, 40.0],
        [5.0, 9.0, 15.0, 31.5, 42.5],
        [15.0, 19.0, 25.0, 38.5, 47.5],
        [20.0, 24.0, 30.0, 42.0, 50.0],
    ];
    let got = get(4, 5, "bilinear");
    for (g, w) in got.iter().zip(want.iter().flatten()) {
        assert!((g - w).abs() < 1e-4, "{got:?}");
    }
    assert_eq!(get(1, 2, "bilinear"), vec![12.5, 38.75]);
    assert_eq!(
        get(3, 2, "nearest"),
        vec![0.0, 40.0, 20.0, 50.0, 20.0, 50.0]
    );
}

#[test]
fn image_folder_validation_split() {
    let dir = image_tree("img-split", &[6, 4]);
    let b = || {
        image_dataset_from_directory(&dir.0)
            .image_size(4, 4)
            .batch_size(Some(3))
            .validation_split(0.25)
            .seed(42)
    };
    let train = b().subset("training").build().unwrap();
    let val = b().subset("validation").build().unwrap();
    // int(0.25 * 10) = 2 validation files, 8 training.
    assert_eq!((train.file_paths.len(), val.file_paths.len()), (8, 2));
    assert_eq!(train.dataset.cardinality(), Some(3));
    assert_eq!(val.dataset.cardinality(), Some(1));
    let mut all: Vec<PathBuf> = train
        .file_paths
        .iter()
        .chain(&val.file_paths)
        .cloned()
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10, "subsets are disjoint and cover every file");
    let (t2, v2) = b().build_both().unwrap();
    assert_eq!(t2.file_paths, train.file_paths);
    assert_eq!(v2.file_paths, val.file_paths);
    let n: usize = train
        .dataset
        .iter()
        .map(|e| e.unwrap().tuple().unwrap()[1].tensor().unwrap().shape()[0])
        .sum();
    assert_eq!(n, 8);
    // Reshuffled each pass, reproducibly for the seed.
    let order = |d: &ImageFolderDataset| -> Vec<Vec<f32>> {
        d.dataset
            .iter()
            .map(|e| {
                e.unwrap().tuple().unwrap()[0]
                    .tensor()
                    .unwrap()
                    .to_vec::<f32>()
                    .unwrap()
            })
            .collect()
    };
    let t3 = b().subset("training").build().unwrap();
    let t4 = b().subset("training").build().unwrap();
    let (a0, b0) = (order(&t3), order(&t4));
    let (a1, b1) = (order(&t3), order(&t4));
    assert_eq!(a0, b0, "same seed, same first pass");
    assert_eq!(a1, b1, "same seed, same second pass");
    assert_ne!(a0, a1, "the next pass is reshuffled");

    assert_has(
        &err_text(
            image_dataset_from_directory(&dir.0)
                .validation_split(0.2)
                .subset("training")
                .build(),
        ),
        &["seed"],
    );
    assert_has(
        &err_text(
            image_dataset_from_directory(&dir.0)
                .validation_split(0.2)
                .seed(1)
                .build(),
        ),
        &["subset"],
    );
    assert_has(
        &err_text(
            image_dataset_from_directory(&dir.0)
                .interpolation("cubic")
                .build(),
        ),
        &["cubic", "bilinear"],
    );
}

#[test]
fn image_folder_wrong_files_are_named() {
    let dir = image_tree("img-bad", &[2, 2]);
    std::fs::write(dir.join("dog/broken.png"), b"this is not a png").unwrap();
    let ds = image_dataset_from_directory(&dir.0)
        .image_size(4, 4)
        .batch_size(Some(2))
        .shuffle(false)
        .build()
        .unwrap();
    let errs: Vec<String> = ds
        .dataset
        .iter()
        .filter_map(|e| e.err().map(|e| e.to_string()))
        .collect();
    assert_eq!(errs.len(), 1);
    assert_has(&errs[0], &["broken.png", "PNG or JPEG"]);

    std::fs::write(dir.join("cat/x.gif"), b"GIF89a").unwrap();
    assert_has(
        &err_text(image_dataset_from_directory(&dir.0).build()),
        &["x.gif", "not supported"],
    );
    let empty = TempDir::new("img-empty");
    std::fs::create_dir_all(empty.join("a")).unwrap();
    assert_has(
        &err_text(image_dataset_from_directory(&empty.0).build()),
        &["no images found"],
    );
}

#[test]
fn image_folder_reads_jpeg() {
    let dir = TempDir::new("img-jpeg");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    image::RgbImage::from_pixel(16, 16, image::Rgb([200, 100, 50]))
        .save(dir.join("a/x.JPG"))
        .unwrap();
    png(&dir.join("b/y.png"), 4, 4, [1, 2, 3]);
    let ds = image_dataset_from_directory(&dir.0)
        .image_size(8, 8)
        .shuffle(false)
        .build()
        .unwrap();
    let e = ds.dataset.iter().next().unwrap().unwrap();
    let x = e.tuple().unwrap()[0]
        .tensor()
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    // JPEG is lossy: the flat color comes back within a few levels.
    for p in x[..64 * 3].chunks(3) {
        assert!(
            (p[0] - 200.0).abs() <= 3.0
                && (p[1] - 100.0).abs() <= 3.0
                && (p[2] - 50.0).abs() <= 3.0,
            "{p:?}"
        );
    }
    assert_eq!(&x[64 * 3..64 * 3 + 3], &[1.0, 2.0, 3.0]);
}
