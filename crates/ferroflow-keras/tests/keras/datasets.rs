//! `keras.datasets`: MNIST from the cache folder or the bundled digits, IDX parsing and errors.

use std::io::Write;
use std::path::PathBuf;

use ferroflow_core::DType;
use ferroflow_keras::datasets::{fashion_mnist, mnist};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferroflow-datasets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An IDX file of bytes: magic 0x0000_08_ndim, big-endian dims, data.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(data);
    b
}

fn write(path: PathBuf, bytes: &[u8], gz: bool) {
    if gz {
        let f = std::fs::File::create(path.with_extension("gz")).unwrap();
        let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// Writes a tiny MNIST-format dataset: `n_train` and `n_test` 2x2 images.
fn write_dataset(dir: &PathBuf, test_prefix: &str, gz: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let imgs = |n: u8, base: u8| -> Vec<u8> { (0..n * 4).map(|i| base + i).collect() };
    write(
        dir.join("train-images-idx3-ubyte"),
        &idx_bytes(&[3, 2, 2], &imgs(3, 0)),
        gz,
    );
    write(
        dir.join("train-labels-idx1-ubyte"),
        &idx_bytes(&[3], &[7, 8, 9]),
        gz,
    );
    write(
        dir.join(format!("{test_prefix}-images-idx3-ubyte")),
        &idx_bytes(&[2, 2, 2], &imgs(2, 100)),
        gz,
    );
    write(
        dir.join(format!("{test_prefix}-labels-idx1-ubyte")),
        &idx_bytes(&[2], &[1, 2]),
        gz,
    );
}

#[test]
fn offline_load_data_falls_back_to_the_bundled_digits() {
    let root = temp_dir("empty");
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data_in(&root).unwrap();
    assert_eq!((x_train.dtype(), y_train.dtype()), (DType::U8, DType::U8));
    assert_eq!(x_train.shape(), &[8000, 28, 28]);
    assert_eq!(y_train.shape(), &[8000]);
    assert_eq!(x_test.shape(), &[2000, 28, 28]);
    assert_eq!(y_test.shape(), &[2000]);
    // Class counts from data/mnist-10k/README.md.
    let mut counts = [0usize; 10];
    for l in y_train.to_vec::<u8>().unwrap() {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [808, 885, 800, 794, 780, 684, 815, 875, 775, 784]);
    let mut counts = [0usize; 10];
    for l in y_test.to_vec::<u8>().unwrap() {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [193, 242, 191, 238, 200, 179, 199, 195, 169, 194]);
}

#[test]
fn full_mnist_is_read_from_the_cache_folder() {
    let root = temp_dir("full");
    write_dataset(&root.join("mnist"), "t10k", true);
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data_in(&root).unwrap();
    assert_eq!(x_train.shape(), &[3, 2, 2]);
    assert_eq!(y_train.to_vec::<u8>().unwrap(), vec![7, 8, 9]);
    assert_eq!(
        x_test.to_vec::<u8>().unwrap(),
        (100..108).collect::<Vec<u8>>()
    );
    assert_eq!(y_test.to_vec::<u8>().unwrap(), vec![1, 2]);
    // Uncompressed files directly in the folder work too.
    let root = temp_dir("plain");
    write_dataset(&root, "test", false);
    let ((x_train, _), _) = mnist::load_data_in(&root).unwrap();
    assert_eq!(
        x_train.to_vec::<u8>().unwrap(),
        (0..12).collect::<Vec<u8>>()
    );
}

#[test]
fn corrupt_idx_files_are_errors_naming_the_file() {
    let root = temp_dir("corrupt");
    write_dataset(&root, "test", false);
    std::fs::write(root.join("train-labels-idx1-ubyte"), [1u8, 2, 3, 4, 5]).unwrap();
    let e = mnist::load_data_from(&root).unwrap_err().to_string();
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("magic"),
        "{e}"
    );
    // Truncated data.
    std::fs::write(
        root.join("train-labels-idx1-ubyte"),
        idx_bytes(&[3], &[7, 8]),
    )
    .unwrap();
    let e = mnist::load_data_from(&root).unwrap_err().to_string();
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("truncated"),
        "{e}"
    );
    // Images and labels that disagree.
    std::fs::write(
        root.join("train-labels-idx1-ubyte"),
        idx_bytes(&[2], &[7, 8]),
    )
    .unwrap();
    let e = mnist::load_data_from(&root).unwrap_err().to_string();
    assert!(
        e.contains("disagree") && e.contains("(3, 2, 2)") && e.contains("(2,)"),
        "{e}"
    );
}

#[test]
fn fashion_mnist_reads_the_same_format_or_says_where_to_put_it() {
    let root = temp_dir("fashion");
    let e = fashion_mnist::load_data_in(&root).unwrap_err().to_string();
    assert!(
        e.contains("fashion-mnist") && e.contains("t10k-images-idx3-ubyte.gz"),
        "{e}"
    );
    write_dataset(&root.join("fashion-mnist"), "t10k", true);
    let ((x, y), _) = fashion_mnist::load_data_in(&root).unwrap();
    assert_eq!(x.shape(), &[3, 2, 2]);
    assert_eq!(y.to_vec::<u8>().unwrap(), vec![7, 8, 9]);
}

#[test]
fn keras_mnist_npz_is_read_from_the_cache_folder() {
    use ferroflow_core::Tensor;
    let root = temp_dir("npz");
    let xt = Tensor::from_vec((0..12u8).collect::<Vec<_>>(), &[3, 2, 2]).unwrap();
    let yt = Tensor::from_vec(vec![4u8, 5, 6], &[3]).unwrap();
    let xs = Tensor::from_vec((50..58u8).collect::<Vec<_>>(), &[2, 2, 2]).unwrap();
    let ys = Tensor::from_vec(vec![1u8, 0], &[2]).unwrap();
    ferroflow_data::io::save_npz(
        root.join("mnist.npz"),
        [
            ("x_train", &xt),
            ("y_train", &yt),
            ("x_test", &xs),
            ("y_test", &ys),
        ],
    )
    .unwrap();
    let ((a, b), (c, d)) = mnist::load_data_in(&root).unwrap();
    assert_eq!(a.to_vec::<u8>().unwrap(), (0..12).collect::<Vec<u8>>());
    assert_eq!(b.to_vec::<u8>().unwrap(), vec![4, 5, 6]);
    assert_eq!(c.shape(), &[2, 2, 2]);
    assert_eq!(d.to_vec::<u8>().unwrap(), vec![1, 0]);
    // A missing array is an error naming it.
    ferroflow_data::io::save_npz(root.join("mnist.npz"), [("x_train", &xt)]).unwrap();
    let e = mnist::load_data_in(&root).unwrap_err().to_string();
    assert!(e.contains("y_train") && e.contains("mnist.npz"), "{e}");
}
