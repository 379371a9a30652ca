//! `summary::SummaryWriter`, `read_events` and `callbacks::TensorBoard`: event files checked by
//! an independent CRC/framing parser, by hand-computed values, against a file written by real
//! TensorFlow (fixtures/tensorboard/make_fixture.py), and — when python with tensorboard is
//! available — with TensorBoard's own loaders (fixtures/tensorboard/check_events.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use ferroflow_core::{ops, Tensor};
use ferroflow_keras::callbacks::TensorBoard;
use ferroflow_keras::layers::{Dense, Layer};
use ferroflow_keras::optimizers::SGD;
use ferroflow_keras::summary::{
    event_files, histogram_buckets, read_events, Event, EventKind, SummaryData, SummaryValue,
    SummaryWriter,
};
use ferroflow_keras::Sequential;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keras/fixtures/tensorboard")
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ff_tb_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// CRC-32C written bit by bit from the Castagnoli polynomial (independent of the table-driven
/// implementation in ferroflow-data).
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            let lsb = crc & 1;
            crc >>= 1;
            if lsb == 1 {
                crc ^= 0x82F6_3B78;
            }
        }
    }
    !crc
}

fn masked(data: &[u8]) -> u32 {
    let c = crc32c_bitwise(data);
    // ((c >> 15) | (c << 17)) + 0xa282ead8, TFRecord's mask.
    c.rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// Splits a TFRecord file by hand, checking both CRCs of every record; returns the payloads.
fn records_checked(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let len = u64::from_le_bytes(b[i..i + 8].try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(b[i + 8..i + 12].try_into().unwrap());
        assert_eq!(masked(&b[i..i + 8]), len_crc, "length CRC at {i}");
        let data = &b[i + 12..i + 12 + len];
        let data_crc = u32::from_le_bytes(b[i + 12 + len..i + 16 + len].try_into().unwrap());
        assert_eq!(masked(data), data_crc, "data CRC at {i}");
        out.push(data.to_vec());
        i += 16 + len;
    }
    assert_eq!(i, b.len());
    out
}

/// (step, value) of every summary value tagged `tag`.
fn values<'a>(events: &'a [Event], tag: &str) -> Vec<(i64, &'a SummaryValue)> {
    let mut out = Vec::new();
    for e in events {
        if let EventKind::Summary(vs) = &e.kind {
            for v in vs.iter().filter(|v| v.tag == tag) {
                out.push((e.step, v));
            }
        }
    }
    out
}

fn scalars(events: &[Event], tag: &str) -> Vec<(i64, f64)> {
    values(events, tag)
        .into_iter()
        .map(|(s, v)| (s, v.scalar().unwrap()))
        .collect()
}

fn only_file(dir: &Path) -> PathBuf {
    let f = event_files(dir).unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    f[0].clone()
}

#[test]
fn writer_file_name_header_and_scalars() {
    let dir = tmpdir("scalars");
    let mut w = SummaryWriter::create(dir.join("a/b")).unwrap();
    for step in 0..12 {
        w.scalar("loss", 1.0 / (step as f64 + 1.0), step).unwrap();
    }
    w.close().unwrap();
    let path = only_file(&dir.join("a/b"));
    // events.out.tfevents.<10 digits>.<host>.<pid>.<n>.v2
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let rest = name.strip_prefix("events.out.tfevents.").unwrap();
    let parts: Vec<&str> = rest.split('.').collect();
    assert_eq!(parts[0].len(), 10, "{name}");
    assert!(parts[0].bytes().all(|c| c.is_ascii_digit()));
    assert_eq!(parts[parts.len() - 1], "v2");
    assert_eq!(
        parts[parts.len() - 3],
        std::process::id().to_string(),
        "{name}"
    );

    let raw = records_checked(&path);
    assert_eq!(raw.len(), 13);
    let events = read_events(&path).unwrap();
    assert_eq!(events.len(), 13);
    assert_eq!(
        events[0].kind,
        EventKind::FileVersion("brain.Event:2".into())
    );
    assert_eq!(events[0].wall_time, events[0].wall_time.floor());
    assert_eq!(events[0].wall_time, parts[0].parse::<f64>().unwrap());
    // Hand-encoded start of the header record: field 1 (fixed64 wall_time), then field 3
    // (string) "brain.Event:2".
    assert_eq!(raw[0][0], 0x09);
    assert_eq!(&raw[0][9..11], &[0x1a, 13]);
    assert_eq!(&raw[0][11..24], b"brain.Event:2");
    let got = scalars(&events, "loss");
    assert_eq!(got.len(), 12);
    for (i, (step, v)) in got.iter().enumerate() {
        assert_eq!(*step, i as i64);
        assert_eq!(*v, (1.0 / (i as f64 + 1.0)) as f32 as f64);
        assert!(events[i + 1].wall_time >= events[0].wall_time);
    }
    // Scalars are `simple_value`s.
    assert!(matches!(
        values(&events, "loss")[0].1.data,
        SummaryData::Simple(_)
    ));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn histogram_buckets_by_hand() {
    // [0, 1, 1, 2, 3] in 4 buckets: width 0.75, bucket = floor(x / 0.75) clamped to 3.
    let rows = histogram_buckets(&[0.0, 1.0, 1.0, 2.0, 3.0], 4);
    assert_eq!(
        rows,
        vec![
            [0.0, 0.75, 1.0],
            [0.75, 1.5, 2.0],
            [1.5, 2.25, 1.0],
            [2.25, 3.0, 1.0]
        ]
    );
    // One distinct value: all edges at it, the count in the last bucket.
    assert_eq!(
        histogram_buckets(&[2.5, 2.5], 3),
        vec![[2.5, 2.5, 0.0], [2.5, 2.5, 0.0], [2.5, 2.5, 2.0]]
    );
    assert_eq!(histogram_buckets(&[], 2), vec![[0.0; 3]; 2]);
    assert!(histogram_buckets(&[1.0], 0).is_empty());
    // 1000 values: counts add up, edges span min..max.
    let v: Vec<f64> = (0..1000).map(|i| ((i * 37) % 101) as f64 - 50.0).collect();
    let r = histogram_buckets(&v, 30);
    assert_eq!(r.iter().map(|b| b[2]).sum::<f64>(), 1000.0);
    assert_eq!(r[0][0], -50.0);
    assert_eq!(r[29][1], 50.0);
}

#[test]
fn writer_histogram_image_text_round_trip() {
    let dir = tmpdir("hist");
    let mut w = SummaryWriter::create(&dir).unwrap();
    let data = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 2.0, 3.0], &[5]).unwrap();
    w.histogram_buckets("w", &data, 7, 4).unwrap();
    w.histogram("w30", &data, 8).unwrap();
    // A 1×2×2 RGB float image: TF's convert_image_dtype → trunc(clamp(x·255.5, 0, 255)).
    let px = vec![
        0.0f32, 0.5, 1.0, 0.1, -0.2, 2.0, 0.25, 0.75, 0.999, 0.004, 0.6, 0.3,
    ];
    let img = Tensor::from_vec(px.clone(), &[1, 2, 2, 3]).unwrap();
    w.image("img", &img, 3).unwrap();
    // Five grey images, at most 3 kept.
    let batch = Tensor::from_vec((0..5 * 4).map(|i| i as u8).collect(), &[5, 2, 2, 1]).unwrap();
    w.image("batch", &batch, 4).unwrap();
    w.text("note", "**hi** there", 5).unwrap();
    w.flush().unwrap();
    let path = only_file(&dir);
    records_checked(&path);
    let events = read_events(&path).unwrap();

    let (step, v) = values(&events, "w")[0];
    assert_eq!(step, 7);
    assert_eq!(v.plugin_name, "histograms");
    assert_eq!(
        v.histogram().unwrap(),
        vec![
            [0.0, 0.75, 1.0],
            [0.75, 1.5, 2.0],
            [1.5, 2.25, 1.0],
            [2.25, 3.0, 1.0]
        ]
    );
    let h30 = values(&events, "w30")[0].1.histogram().unwrap();
    assert_eq!(h30.len(), 30);
    assert_eq!(h30.iter().map(|r| r[2]).sum::<f64>(), 5.0);

    let (step, v) = values(&events, "img")[0];
    assert_eq!(step, 3);
    assert_eq!(v.plugin_name, "images");
    let s = v.strings().unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!((&s[0][..], &s[1][..]), (&b"2"[..], &b"2"[..]));
    let decoded = image::load_from_memory(&s[2]).unwrap().to_rgb8();
    let expect: Vec<u8> = px
        .iter()
        .map(|&x| {
            let y = (x as f64 * 255.5).clamp(0.0, 255.0);
            y.trunc() as u8
        })
        .collect();
    assert_eq!(decoded.into_raw(), expect);
    assert_eq!(expect[..4], [0, 127, 255, 25]);

    let s = values(&events, "batch")[0].1.strings().unwrap().to_vec();
    assert_eq!(s.len(), 2 + 3);
    for (i, png) in s[2..].iter().enumerate() {
        let g = image::load_from_memory(png).unwrap().to_luma8().into_raw();
        assert_eq!(g, (4 * i as u8..4 * i as u8 + 4).collect::<Vec<u8>>());
    }

    let (step, v) = values(&events, "note")[0];
    assert_eq!(step, 5);
    assert_eq!(v.plugin_name, "text");
    assert_eq!(v.strings().unwrap(), &[b"**hi** there".to_vec()]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn writer_errors() {
    // A log directory below a regular file cannot be created.
    let dir = tmpdir("err");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plain_file");
    std::fs::write(&file, b"x").unwrap();
    let err = SummaryWriter::create(file.join("logs"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("plain_file"), "{err}");
    let mut w = SummaryWriter::create(dir.join("ok")).unwrap();
    // Images must be NHWC with 1, 3 or 4 channels.
    let e = w
        .image("x", &ops::zeros(&[2, 2, 3], ferroflow_core::DType::F32), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("NHWC"), "{e}");
    assert!(w
        .image(
            "x",
            &ops::zeros(&[1, 2, 2, 2], ferroflow_core::DType::F32),
            0
        )
        .is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reader_reports_bad_crc_and_truncation_with_file_and_offset() {
    let dir = tmpdir("crc");
    let mut w = SummaryWriter::create(&dir).unwrap();
    w.scalar("a", 1.0, 1).unwrap();
    w.scalar("a", 2.0, 2).unwrap();
    w.close().unwrap();
    let path = only_file(&dir);
    let raw = records_checked(&path);
    let second = 16 + raw[0].len();
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip a byte in the second record's data.
    bytes[second + 12 + 3] ^= 0x40;
    let bad = dir.join("events.out.tfevents.bad");
    std::fs::write(&bad, &bytes).unwrap();
    let e = read_events(&bad).unwrap_err().to_string();
    assert!(e.contains("events.out.tfevents.bad"), "{e}");
    assert!(e.contains(&format!("byte {second}")), "{e}");
    assert!(e.contains("CRC"), "{e}");
    // A truncated last record.
    let good = std::fs::read(&path).unwrap();
    let cut = dir.join("events.out.tfevents.cut");
    std::fs::write(&cut, &good[..good.len() - 3]).unwrap();
    let e = read_events(&cut).unwrap_err().to_string();
    let third = second + 16 + raw[1].len();
    assert!(e.contains(&format!("byte {third}")), "{e}");
    // Missing file.
    assert!(read_events(dir.join("nope")).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reads_an_event_file_written_by_tensorflow() {
    // Written by TF 2.21's tf.summary (make_fixture.py): loss = 1/(step+1) at steps 0..2,
    // histogram "w" of [0, 1, 1, 2, 3] with 4 buckets at step 0, text "note" at step 1.
    let path = fixtures().join("events.out.tfevents.tf_fixture.v2");
    records_checked(&path);
    let events = read_events(&path).unwrap();
    assert_eq!(
        events[0].kind,
        EventKind::FileVersion("brain.Event:2".into())
    );
    let loss = scalars(&events, "loss");
    let expect: Vec<(i64, f64)> = (0..3)
        .map(|s| (s, (1.0 / (s as f64 + 1.0)) as f32 as f64))
        .collect();
    assert_eq!(loss, expect);
    assert_eq!(values(&events, "loss")[0].1.plugin_name, "scalars");
    let (step, h) = values(&events, "w")[0];
    assert_eq!(step, 0);
    assert_eq!(h.plugin_name, "histograms");
    // TF's buckets equal the hand computation (and so ours).
    assert_eq!(
        h.histogram().unwrap(),
        histogram_buckets(&[0.0, 1.0, 1.0, 2.0, 3.0], 4)
    );
    let (step, t) = values(&events, "note")[0];
    assert_eq!(step, 1);
    assert_eq!(t.plugin_name, "text");
    assert_eq!(t.strings().unwrap(), &[b"hello".to_vec()]);
}

fn small_model() -> Sequential {
    let mut m = Sequential::new();
    m.add(Dense::new(2).input_shape(&[3])).unwrap();
    m.compile(SGD::new().learning_rate(0.1), "mse", ()).unwrap();
    m
}

fn small_data() -> (Tensor, Tensor) {
    let x = Tensor::from_vec((0..48).map(|i| (i % 7) as f32 / 7.0).collect(), &[16, 3]).unwrap();
    let y = Tensor::from_vec((0..32).map(|i| (i % 5) as f32 / 5.0).collect(), &[16, 2]).unwrap();
    (x, y)
}

/// fit(3 epochs, 4 batches each) with validation, histograms, images, batch logging every 2.
fn fit_with_tensorboard(logdir: &Path) -> (Sequential, ferroflow_keras::callbacks::History) {
    let (x, y) = small_data();
    let mut m = small_model();
    let h = m
        .fit(&x, &y)
        .epochs(3)
        .batch_size(4)
        .shuffle(false)
        .verbose(0)
        .validation_data(&x, &y)
        .callback(
            TensorBoard::new(logdir)
                .histogram_freq(1)
                .write_images(true)
                .update_freq(2)
                .write_profile(true),
        )
        .run()
        .unwrap();
    (m, h)
}

#[test]
fn callback_writes_keras_layout_and_tags() {
    let dir = tmpdir("fit");
    let (m, h) = fit_with_tensorboard(&dir);
    let train_file = only_file(&dir.join("train"));
    let val_file = only_file(&dir.join("validation"));
    records_checked(&train_file);
    records_checked(&val_file);
    let train = read_events(&train_file).unwrap();
    let val = read_events(&val_file).unwrap();
    let f32v = |v: f64| v as f32 as f64;

    // epoch_* in train/, step = epoch.
    let loss = h.get("loss").unwrap();
    let want: Vec<(i64, f64)> = (0..3).map(|e| (e as i64, f32v(loss[e]))).collect();
    assert_eq!(scalars(&train, "epoch_loss"), want);
    assert_eq!(
        scalars(&train, "epoch_learning_rate"),
        (0..3).map(|e| (e, f32v(0.1))).collect::<Vec<_>>()
    );
    // batch_* every 2 global batches (12 batches in all, counted from 1).
    let steps: Vec<i64> = scalars(&train, "batch_loss").iter().map(|s| s.0).collect();
    assert_eq!(steps, vec![2, 4, 6, 8, 10, 12]);
    // validation/: epoch_* without the val_ prefix, and evaluation_*_vs_iterations at the
    // optimizer's iterations (4 per epoch).
    let vloss = h.get("val_loss").unwrap();
    let want: Vec<(i64, f64)> = (0..3).map(|e| (e as i64, f32v(vloss[e]))).collect();
    assert_eq!(scalars(&val, "epoch_loss"), want);
    let ev = scalars(&val, "evaluation_loss_vs_iterations");
    assert_eq!(ev, vec![(4, want[0].1), (8, want[1].1), (12, want[2].1)]);
    assert!(scalars(&val, "epoch_learning_rate").is_empty());

    // The Keras JSON of the model, once, step 0.
    let k = values(&train, "keras");
    assert_eq!(k.len(), 1);
    assert_eq!(k[0].1.plugin_name, "graph_keras_model");
    assert_eq!(k[0].1.plugin_content, b"1");
    let json: serde_json::Value = serde_json::from_slice(&k[0].1.strings().unwrap()[0]).unwrap();
    assert_eq!(json["class_name"], "Sequential");
    let layer = m.layers()[0].name();
    assert_eq!(json["config"]["layers"][0]["class_name"], "Dense");
    assert_eq!(
        json["config"]["layers"][0]["config"]["name"],
        layer.as_str()
    );

    // Histograms per weight per epoch, tagged <model>/<layer>/<weight>/histogram; the last one
    // is of the final weights.
    let kernel_tag = format!("{}/{}/kernel/histogram", m.name(), layer);
    let hk = values(&train, &kernel_tag);
    assert_eq!(hk.iter().map(|v| v.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    let final_kernel = m.get_weights()[0].to_f64_vec();
    assert_eq!(
        hk[2].1.histogram().unwrap(),
        histogram_buckets(&final_kernel, 30)
    );
    let bias_tag = format!("{}/{}/bias/histogram", m.name(), layer);
    assert_eq!(values(&train, &bias_tag).len(), 3);
    // Weight images: the [3, 2] kernel transposed to 1×2×3, the bias as 1×2.
    let img = values(&train, &format!("{}/{}/kernel/image", m.name(), layer));
    assert_eq!(img.len(), 3);
    let s = img[0].1.strings().unwrap();
    assert_eq!((&s[0][..], &s[1][..]), (&b"3"[..], &b"2"[..]));
    let img = values(&train, &format!("{}/{}/bias/image", m.name(), layer));
    let s = img[0].1.strings().unwrap();
    assert_eq!((&s[0][..], &s[1][..]), (&b"1"[..], &b"2"[..]));

    // The op profile as text, each epoch.
    let p = values(&train, "ferroflow_profile");
    assert_eq!(p.len(), 3);
    let table = String::from_utf8(p[2].1.strings().unwrap()[0].clone()).unwrap();
    assert!(table.starts_with("| op | calls |"), "{table}");
    assert!(table.contains("BatchMatMulV2"), "{table}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn callback_rejects_a_bad_update_freq_and_an_uncreatable_dir() {
    let (x, y) = small_data();
    let mut m = small_model();
    let e = m
        .fit(&x, &y)
        .verbose(0)
        .callback(TensorBoard::new(tmpdir("bad")).update_freq("weekly"))
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("weekly"), "{e}");
    let dir = tmpdir("badpath");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), b"x").unwrap();
    let e = m
        .fit(&x, &y)
        .verbose(0)
        .callback(TensorBoard::new(dir.join("f/logs")))
        .run()
        .unwrap_err()
        .to_string();
    assert!(e.contains("f/logs"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A python with tensorboard (and PIL) importable, if any.
fn python_with_tensorboard() -> Option<String> {
    for py in ["/work/venvs/tf/bin/python", "python3"] {
        let ok = Command::new(py)
            .args(["-c", "import tensorboard, PIL, numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py.to_string());
        }
    }
    None
}

#[test]
fn tensorboard_loaders_read_our_files() {
    let Some(py) = python_with_tensorboard() else {
        eprintln!("skipped: no python with tensorboard and PIL importable");
        return;
    };
    let dir = tmpdir("py");
    {
        let mut w = SummaryWriter::create(dir.join("custom")).unwrap();
        for step in 0..3 {
            w.scalar("loss", 1.0 / (step as f64 + 1.0), step).unwrap();
        }
        let data = Tensor::from_vec(vec![0.0f32, 1.0, 1.0, 2.0, 3.0], &[5]).unwrap();
        w.histogram_buckets("w", &data, 2, 4).unwrap();
        let img = Tensor::from_vec((0..12u8).map(|i| i * 20).collect(), &[1, 2, 2, 3]).unwrap();
        w.image("img", &img, 1).unwrap();
        w.text("note", "hello *world*", 4).unwrap();
        w.close().unwrap();
    }
    let (m, h) = fit_with_tensorboard(&dir.join("fit"));
    let out = Command::new(&py)
        .arg(fixtures().join("check_events.py"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    let j: serde_json::Value = serde_json::from_str(last).unwrap();
    let c = &j["custom"];
    // The classic EventAccumulator lists our scalars as scalars.
    let loss: Vec<(i64, f64)> = c["scalars"]["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(
        loss,
        (0..3)
            .map(|s| (s, (1.0 / (s as f64 + 1.0)) as f32 as f64))
            .collect::<Vec<_>>()
    );
    // TensorBoard's loader sees them as the scalars plugin's, and reads the rest.
    assert_eq!(c["plugins"]["loss"], "scalars");
    assert_eq!(c["plugins"]["w"], "histograms");
    assert_eq!(c["plugins"]["img"], "images");
    assert_eq!(c["plugins"]["note"], "text");
    assert_eq!(
        c["histograms"]["w"][0],
        serde_json::json!([
            2,
            [
                [0.0, 0.75, 1.0],
                [0.75, 1.5, 2.0],
                [1.5, 2.25, 1.0],
                [2.25, 3.0, 1.0]
            ]
        ])
    );
    let im = &c["images"]["img"][0];
    assert_eq!(im[0], 1);
    assert_eq!((im[1].as_i64(), im[2].as_i64()), (Some(2), Some(2)));
    let px: Vec<i64> = (0..12).map(|i| i * 20).collect();
    assert_eq!(im[3][0], serde_json::json!(px));
    assert_eq!(
        c["text"]["note"][0],
        serde_json::json!([4, "hello *world*"])
    );

    // The callback's runs.
    let t = &j["fit/train"];
    let loss = h.get("loss").unwrap();
    for e in 0..3 {
        assert_eq!(t["scalars"]["epoch_loss"][e][0], e as i64);
        assert_eq!(
            t["scalars"]["epoch_loss"][e][1].as_f64().unwrap(),
            loss[e] as f32 as f64
        );
    }
    assert_eq!(t["scalars"]["batch_loss"].as_array().unwrap().len(), 6);
    let layer = m.layers()[0].name();
    let kernel_tag = format!("{}/{}/kernel/histogram", m.name(), layer);
    assert_eq!(t["plugins"][&kernel_tag], "histograms");
    assert_eq!(t["histograms"][&kernel_tag].as_array().unwrap().len(), 3);
    assert_eq!(t["plugins"]["keras"], "graph_keras_model");
    assert_eq!(t["plugins"]["ferroflow_profile"], "text");
    let v = &j["fit/validation"];
    let vl = h.get("val_loss").unwrap();
    assert_eq!(
        v["scalars"]["evaluation_loss_vs_iterations"][2],
        serde_json::json!([12, vl[2] as f32 as f64])
    );
    std::fs::remove_dir_all(&dir).ok();
}
