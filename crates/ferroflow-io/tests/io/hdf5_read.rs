//! The reader against files written by h5py 3.14 / libhdf5 1.14 (tests/fixtures/make_fixtures.py).
//! Expected values are the ones the script stored, written out here by hand.

use ferroflow_core::DType;
use ferroflow_io::hdf5::{Datatype, File, Value};

use crate::common::{fixture, inputs};

#[test]
fn kinds_integers_keep_values_and_map_dtypes() {
    let f = File::open(fixture("kinds.h5")).unwrap();
    assert_eq!(f.superblock_version(), 0);
    for (name, dtype) in [
        ("i1", DType::I32),
        ("i2", DType::I32),
        ("i4", DType::I32),
        ("i8", DType::I64),
        ("u1", DType::U8),
        ("u2", DType::I32),
        ("u4", DType::I64),
        ("u8", DType::I64),
    ] {
        let d = f.dataset(&format!("numbers/{name}")).unwrap();
        assert_eq!(d.shape(), &[2, 3], "{name}");
        let t = d.read().unwrap();
        assert_eq!(t.dtype(), dtype, "{name}");
        assert_eq!(
            t.to_f64_vec(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 100.0],
            "{name}"
        );
    }
    let neg = f.dataset("numbers/neg").unwrap().read().unwrap();
    assert_eq!(neg.to_vec::<i32>().unwrap(), vec![-1, -128, 127]);
    let be = f.dataset("numbers/i4_be").unwrap();
    assert!(matches!(
        be.datatype(),
        Datatype::Int {
            size: 4,
            signed: true,
            order: ferroflow_io::hdf5::ByteOrder::Big
        }
    ));
    assert_eq!(
        be.read().unwrap().to_vec::<i32>().unwrap(),
        vec![1, -2, 70000]
    );
}

#[test]
fn kinds_floats_both_byte_orders_scalar_bool_empty() {
    let f = File::open(fixture("kinds.h5")).unwrap();
    let f2 = f.dataset("numbers/f2").unwrap().read().unwrap();
    assert_eq!(f2.dtype(), DType::F16);
    assert_eq!(f2.to_f64_vec(), vec![0.5, -1.25, 65504.0]);
    let f4 = f.dataset("numbers/f4").unwrap().read().unwrap();
    assert_eq!(f4.shape(), &[2, 2]);
    assert_eq!(f4.to_vec::<f32>().unwrap(), vec![1.5, -2.0, 3.25, 1e-3]);
    let f8 = f.dataset("numbers/f8").unwrap().read().unwrap();
    assert_eq!(
        f8.to_vec::<f64>().unwrap(),
        vec![std::f64::consts::PI, -std::f64::consts::E]
    );
    let be = f.dataset("numbers/f4_be").unwrap().read().unwrap();
    assert_eq!(be.to_vec::<f32>().unwrap(), vec![1.5, -2.0, 7.0]);
    let s = f.dataset("numbers/scalar").unwrap();
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(s.read().unwrap().to_vec::<f32>().unwrap(), vec![2.5]);
    let b = f.dataset("numbers/bool").unwrap().read().unwrap();
    assert_eq!(b.to_vec::<bool>().unwrap(), vec![true, false, true]);
    let e = f.dataset("numbers/empty").unwrap();
    assert_eq!(e.shape(), &[0, 3]);
    assert_eq!(e.read().unwrap().num_elements(), 0);
    assert_eq!(
        f.dataset("numbers/f4")
            .unwrap()
            .attr("unit")
            .unwrap()
            .as_string()
            .unwrap(),
        "m/s"
    );
}

#[test]
fn kinds_attributes_of_every_kind() {
    let f = File::open(fixture("kinds.h5")).unwrap();
    let root = f.root().unwrap();
    assert_eq!(
        root.attr("vlen_str").unwrap().value().unwrap(),
        Value::String("héllo".into())
    );
    assert_eq!(root.attr("fixed_str").unwrap().as_string().unwrap(), "abc");
    assert_eq!(
        root.attr("vlen_list").unwrap().as_strings().unwrap(),
        vec!["a", "bb", "ccc"]
    );
    assert_eq!(
        root.attr("fixed_list").unwrap().as_strings().unwrap(),
        vec!["x", "yy"]
    );
    assert_eq!(
        root.attr("int_attr")
            .unwrap()
            .as_tensor()
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![-42]
    );
    assert_eq!(
        root.attr("float_list")
            .unwrap()
            .as_tensor()
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![1.5, -2.25]
    );
    // Keras writes an empty name list as an empty float64 array.
    assert!(root
        .attr("empty_f64")
        .unwrap()
        .as_strings()
        .unwrap()
        .is_empty());
    let err = root.attr("missing").unwrap_err().to_string();
    assert!(err.contains("missing") && err.contains("vlen_str"), "{err}");
}

#[test]
fn kinds_layouts_groups_and_btrees() {
    let f = File::open(fixture("kinds.h5")).unwrap();
    let c = f.dataset("compact").unwrap().read().unwrap();
    assert_eq!(c.to_vec::<i32>().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    let err = f
        .dataset("chunked")
        .unwrap()
        .read()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/chunked") && err.contains("not supported"),
        "{err}"
    );
    assert!(err.contains("kinds.h5"), "{err}");
    let s = f.dataset("strings").unwrap().read_strings().unwrap();
    assert_eq!(s, vec!["ab", "cde"]);
    // 300 members: a two-level group B-tree.
    let big = f.group("big").unwrap();
    let names = big.member_names();
    assert_eq!(names.len(), 300);
    for i in [0usize, 7, 123, 256, 299] {
        let v = big.dataset(&i.to_string()).unwrap().read().unwrap();
        assert_eq!(v.to_vec::<i32>().unwrap(), vec![i as i32]);
    }
    let deep = f.group("a/b/c").unwrap();
    assert_eq!(deep.path(), "/a/b/c");
    assert_eq!(
        deep.attr("depth")
            .unwrap()
            .as_tensor()
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![3]
    );
    let err = f.group("numbers/f4").err().unwrap().to_string();
    assert!(err.contains("not a group"), "{err}");
    let err = f.dataset("nope").err().unwrap().to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn libver_latest_file_reads() {
    let f = File::open(fixture("latest.h5")).unwrap();
    assert!(f.superblock_version() >= 2);
    assert_eq!(
        f.root().unwrap().attr("name").unwrap().as_string().unwrap(),
        "latest"
    );
    let k = f.dataset("layers/dense/vars/0").unwrap().read().unwrap();
    assert_eq!(k.shape(), &[3, 2]);
    assert_eq!(
        k.to_vec::<f32>().unwrap(),
        inputs(&[3, 2]).to_vec::<f32>().unwrap()
    );
    assert_eq!(
        f.group("layers/dense/vars")
            .unwrap()
            .attr("name")
            .unwrap()
            .as_string()
            .unwrap(),
        "dense"
    );
    assert_eq!(
        f.dataset("vals")
            .unwrap()
            .read()
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![1, 2, 3]
    );
}

#[test]
fn real_keras_weights_file_structure() {
    let f = File::open(fixture("mlp.weights.h5")).unwrap();
    let root = f.root().unwrap();
    assert_eq!(root.member_names(), vec!["layers", "optimizer", "vars"]);
    assert_eq!(
        f.group("layers").unwrap().member_names(),
        vec!["batch_normalization", "dense", "dense_1", "dropout"]
    );
    assert_eq!(
        f.group("vars")
            .unwrap()
            .attr("name")
            .unwrap()
            .as_string()
            .unwrap(),
        "mlp"
    );
    assert_eq!(f.dataset("layers/dense/vars/0").unwrap().shape(), &[8, 16]);
    let it = f.dataset("optimizer/vars/0").unwrap().read().unwrap();
    assert_eq!(it.dtype(), DType::I64);
    // 32 samples, batch 4, 2 epochs.
    assert_eq!(it.to_vec::<i64>().unwrap(), vec![16]);
    let opt = f.group("optimizer/vars").unwrap();
    // iteration, learning_rate, then m and v per trainable variable (2 + 2 + 2 + 2 variables).
    assert_eq!(opt.member_names().len(), 2 + 2 * 6);
}

#[test]
fn tree_lists_groups_datasets_and_attributes() {
    let f = File::open(fixture("mlp.weights.h5")).unwrap();
    let t = f.tree().unwrap();
    assert!(t.contains("/layers/dense/vars @name=\"dense\"\n"), "{t}");
    assert!(t.contains("/layers/dense/vars/0: float32 [8, 16]\n"), "{t}");
    assert!(t.contains("/optimizer/vars/0: int64 []\n"), "{t}");
    assert!(t.starts_with("/\n"), "{t}");
}

#[test]
fn not_hdf5_and_missing_files_are_errors() {
    let err = File::open(fixture("make_fixtures.py"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("not an HDF5 file") && err.contains("make_fixtures.py"),
        "{err}"
    );
    let err = File::open(fixture("nope.h5")).err().unwrap().to_string();
    assert!(err.contains("nope.h5"), "{err}");
    let err = File::from_bytes("empty", Vec::new())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("empty"), "{err}");
}
