//! The writer: our reader reads back what it wrote; h5py reads it (when python is present);
//! writes are atomic.

use ferroflow_core::{DType, Tensor};
use ferroflow_io::hdf5::{AttrValue, File, Value};

use crate::common::{python, run_python, tmp, walk};

/// A file with every dtype and attribute kind the writer supports.
fn write_sample(path: &std::path::Path) {
    let mut w = File::create(path);
    let root = w.root();
    root.set_attr("title", "héllo");
    root.set_attr(
        "names",
        AttrValue::Strings(vec!["dense".into(), "".into(), "dense_1".into()]),
    );
    root.set_attr(
        "fixed",
        AttrValue::FixedStrings(vec!["ab".into(), "c".into()]),
    );
    root.set_attr("count", 7i64);
    root.set_attr("scale", 0.5f64);
    root.set_attr(
        "empty",
        AttrValue::Tensor(Tensor::from_vec(Vec::<f64>::new(), &[0]).unwrap()),
    );
    root.create_dataset(
        "f32",
        &Tensor::from_vec(vec![1.5f32, -2.0, 3.25, 4.0, 5.0, 6.0], &[2, 3]).unwrap(),
    )
    .unwrap()
    .set_attr("unit", "m");
    root.create_dataset(
        "f64",
        &Tensor::from_vec(vec![std::f64::consts::PI], &[1]).unwrap(),
    )
    .unwrap();
    root.create_dataset(
        "f16",
        &Tensor::from_f64_slice(DType::F16, &[0.5, -1.25], &[2]).unwrap(),
    )
    .unwrap();
    root.create_dataset("i32", &Tensor::from_vec(vec![-1i32, 70000], &[2]).unwrap())
        .unwrap();
    root.create_dataset("g/i64", &Tensor::scalar(-5i64))
        .unwrap();
    root.create_dataset("g/u8", &Tensor::from_vec(vec![0u8, 255], &[2]).unwrap())
        .unwrap();
    root.create_dataset(
        "g/bool",
        &Tensor::from_vec(vec![true, false], &[2]).unwrap(),
    )
    .unwrap();
    root.create_dataset(
        "g/empty",
        &Tensor::from_vec(Vec::<f32>::new(), &[0, 4]).unwrap(),
    )
    .unwrap();
    root.group("g/h/empty_group")
        .unwrap()
        .set_attr("name", "deep");
    // More members than one symbol-table node holds, and than 256 (a larger leaf K).
    for i in 0..300i32 {
        root.create_dataset(&format!("many/{i}"), &Tensor::scalar(i))
            .unwrap();
    }
    w.close().unwrap();
}

#[test]
fn writer_output_reads_back() {
    let path = tmp("sample.h5");
    write_sample(&path);
    let f = File::open(&path).unwrap();
    assert_eq!(f.superblock_version(), 0);
    let root = f.root().unwrap();
    assert_eq!(
        root.member_names(),
        vec!["f16", "f32", "f64", "g", "i32", "many"]
    );
    assert_eq!(
        root.attr("title").unwrap().value().unwrap(),
        Value::String("héllo".into())
    );
    assert_eq!(
        root.attr("names").unwrap().as_strings().unwrap(),
        vec!["dense", "", "dense_1"]
    );
    assert_eq!(
        root.attr("fixed").unwrap().as_strings().unwrap(),
        vec!["ab", "c"]
    );
    assert_eq!(
        root.attr("count")
            .unwrap()
            .as_tensor()
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![7]
    );
    assert_eq!(
        root.attr("scale")
            .unwrap()
            .as_tensor()
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![0.5]
    );
    assert!(root.attr("empty").unwrap().as_strings().unwrap().is_empty());
    let d = f.dataset("f32").unwrap();
    assert_eq!(d.shape(), &[2, 3]);
    assert_eq!(
        d.read().unwrap().to_vec::<f32>().unwrap(),
        vec![1.5, -2.0, 3.25, 4.0, 5.0, 6.0]
    );
    assert_eq!(d.attr("unit").unwrap().as_string().unwrap(), "m");
    assert_eq!(
        f.dataset("f64")
            .unwrap()
            .read()
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![std::f64::consts::PI]
    );
    assert_eq!(
        f.dataset("f16").unwrap().read().unwrap().to_f64_vec(),
        vec![0.5, -1.25]
    );
    assert_eq!(
        f.dataset("i32")
            .unwrap()
            .read()
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![-1, 70000]
    );
    assert_eq!(
        f.dataset("g/i64")
            .unwrap()
            .read()
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![-5]
    );
    assert_eq!(
        f.dataset("g/u8")
            .unwrap()
            .read()
            .unwrap()
            .to_vec::<u8>()
            .unwrap(),
        vec![0, 255]
    );
    assert_eq!(
        f.dataset("g/bool")
            .unwrap()
            .read()
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(f.dataset("g/empty").unwrap().shape(), &[0, 4]);
    assert_eq!(
        f.group("g/h/empty_group")
            .unwrap()
            .attr("name")
            .unwrap()
            .as_string()
            .unwrap(),
        "deep"
    );
    let many = f.group("many").unwrap();
    assert_eq!(many.member_names().len(), 300);
    assert_eq!(
        many.dataset("299")
            .unwrap()
            .read()
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![299]
    );
    assert!(walk(&root).unwrap() > 300);
}

#[test]
fn bfloat16_is_stored_as_keras_does() {
    // Keras stores bfloat16 variables as 2-byte opaque data with a `dtype="bfloat16"` attribute.
    let path = tmp("bf16.h5");
    let t = Tensor::from_f64_slice(DType::BF16, &[1.5, -2.0, 0.15625], &[3]).unwrap();
    let mut w = File::create(&path);
    w.root().create_dataset("v", &t).unwrap();
    w.close().unwrap();
    let f = File::open(&path).unwrap();
    let d = f.dataset("v").unwrap();
    assert!(matches!(
        d.datatype(),
        ferroflow_io::hdf5::Datatype::Opaque { size: 2, .. }
    ));
    assert_eq!(d.attr("dtype").unwrap().as_string().unwrap(), "bfloat16");
    let back = d.read().unwrap();
    assert_eq!(back.dtype(), DType::BF16);
    assert_eq!(back.to_f64_vec(), vec![1.5, -2.0, 0.15625]);
}

#[test]
fn writer_is_deterministic_and_atomic() {
    let path = tmp("det.h5");
    write_sample(&path);
    let a = std::fs::read(&path).unwrap();
    write_sample(&path); // over the existing file
    let b = std::fs::read(&path).unwrap();
    assert_eq!(a, b);
    let dir = path.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // A write into a missing directory fails and leaves nothing.
    let bad = dir.join("no/such/dir/x.h5");
    let mut w = File::create(&bad);
    w.root().set_attr("a", 1i64);
    assert!(w.close().is_err());
}

#[test]
fn writer_rejects_bad_names_and_oversized_attributes() {
    let mut w = File::create(tmp("bad.h5"));
    assert!(w.root().create_dataset("", &Tensor::scalar(1i32)).is_err());
    w.root().create_dataset("d", &Tensor::scalar(1i32)).unwrap();
    let err = w.root().group("d/x").err().unwrap().to_string();
    assert!(err.contains("is a dataset"), "{err}");
    // An attribute above 64 KiB does not fit an object header (Keras splits such lists).
    let long: Vec<String> = (0..9000).map(|i| format!("layer_{i}")).collect();
    w.root()
        .set_attr("layer_names", AttrValue::FixedStrings(long));
    let err = w.to_bytes().err().unwrap().to_string();
    assert!(err.contains("layer_names"), "{err}");
}

#[test]
fn h5py_reads_our_file() {
    let Some(py) = python() else {
        eprintln!("skipped: no python with h5py/keras (set FERROFLOW_PYTHON)");
        return;
    };
    let path = tmp("for_h5py.h5");
    write_sample(&path);
    let script = format!(
        r#"
import h5py, json, numpy as np
f = h5py.File({path:?}, "r")
out = {{}}
def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
        v = obj[()]
        out[name] = [str(obj.dtype), list(obj.shape), np.asarray(v).astype("float64").ravel().tolist() if obj.size else []]
    for k, a in obj.attrs.items():
        a = a.tolist() if hasattr(a, "tolist") else a
        if isinstance(a, bytes): a = a.decode()
        if isinstance(a, list): a = [x.decode() if isinstance(x, bytes) else x for x in a]
        out[name + "@" + k] = a
f.visititems(visit)
for k, a in f.attrs.items():
    a = a.tolist() if hasattr(a, "tolist") else a
    if isinstance(a, list): a = [x.decode() if isinstance(x, bytes) else x for x in a]
    out["@" + k] = a
print(json.dumps(out, sort_keys=True))
"#,
        path = path.display().to_string()
    );
    let got = run_python(&py, &script);
    let v: serde_json::Value = serde_json::from_str(got.trim()).unwrap();
    assert_eq!(v["@title"], "héllo");
    assert_eq!(v["@names"], serde_json::json!(["dense", "", "dense_1"]));
    assert_eq!(v["@fixed"], serde_json::json!(["ab", "c"]));
    assert_eq!(v["@count"], 7);
    assert_eq!(v["@scale"], 0.5);
    assert_eq!(
        v["f32"],
        serde_json::json!(["float32", [2, 3], [1.5, -2.0, 3.25, 4.0, 5.0, 6.0]])
    );
    assert_eq!(v["f32@unit"], "m");
    assert_eq!(v["f16"], serde_json::json!(["float16", [2], [0.5, -1.25]]));
    assert_eq!(v["i32"], serde_json::json!(["int32", [2], [-1.0, 70000.0]]));
    assert_eq!(v["g/i64"], serde_json::json!(["int64", [], [-5.0]]));
    assert_eq!(v["g/u8"], serde_json::json!(["uint8", [2], [0.0, 255.0]]));
    assert_eq!(v["g/bool"], serde_json::json!(["bool", [2], [1.0, 0.0]]));
    assert_eq!(v["g/empty"], serde_json::json!(["float32", [0, 4], []]));
    assert_eq!(v["g/h/empty_group@name"], "deep");
    assert_eq!(v["many/299"], serde_json::json!(["int32", [], [299.0]]));
}
