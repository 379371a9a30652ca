//! The seed CNN: Keras's summary table, parameter counts, and bit-identical training on 1 and
//! 2 threads.

use ferroflow_core::{ops, DType, Tensor};
use ferroflow_keras::datasets::mnist;
use ferroflow_keras::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use ferroflow_keras::prelude::*;
use ferroflow_keras::utils::{clear_session, set_random_seed};

fn seed_cnn() -> Sequential {
    let mut model = Sequential::new();
    model
        .add(
            Conv2D::new(32, (3, 3))
                .activation("relu")
                .input_shape(&[28, 28, 1]),
        )
        .unwrap();
    model.add(MaxPooling2D::new((2, 2))).unwrap();
    model
        .add(Conv2D::new(64, (3, 3)).activation("relu"))
        .unwrap();
    model.add(MaxPooling2D::new((2, 2))).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(128).activation("relu")).unwrap();
    model.add(Dense::new(10).activation("softmax")).unwrap();
    model
}

/// Real Keras 3.15 output for the seed CNN in an 80-column, non-tty environment
/// (shared/docs/keras-reference.md §2.2).
const KERAS_SUMMARY: &str = r#"Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d (MaxPooling2D)    │ (None, 13, 13, 32)     │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_1 (Conv2D)               │ (None, 11, 11, 64)     │        18,496 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d_1 (MaxPooling2D)  │ (None, 5, 5, 64)       │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ flatten (Flatten)               │ (None, 1600)           │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 128)            │       204,928 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │         1,290 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 225,034 (879.04 KB)
 Trainable params: 225,034 (879.04 KB)
 Non-trainable params: 0 (0.00 B)
"#;

#[test]
fn summary_matches_keras_byte_for_byte() {
    clear_session();
    let model = seed_cnn();
    assert_eq!(model.count_params(), 225_034);
    assert_eq!(model.summary_string(Some(80)), KERAS_SUMMARY);
}

#[test]
fn summary_after_training_counts_optimizer_params() {
    clear_session();
    let mut model = seed_cnn();
    model
        .compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    let x = ops::zeros(&[2, 28, 28, 1], DType::F32);
    let y = Tensor::from_vec(vec![1i64, 2], &[2]).unwrap();
    model.train_on_batch(&x, &y, None).unwrap();
    let s = model.summary_string(Some(80));
    // Keras: 2 × 225,034 slots + iteration + learning_rate.
    assert!(s.contains(" Total params: 675,104 (2.58 MB)\n"), "{s}");
    assert!(s.contains(" Optimizer params: 450,070 (1.72 MB)\n"), "{s}");
}

fn mnist_subset(n: usize) -> (Tensor, Tensor) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist-10k");
    let ((x, y), _) = mnist::load_data_from(dir).unwrap();
    let idx = Tensor::from_vec((0..n as i64).collect::<Vec<_>>(), &[n]).unwrap();
    let x = ops::gather(&x, &idx, 0).unwrap();
    let x = ops::mul_scalar(&ops::cast(&x, DType::F32).unwrap(), 1.0 / 255.0).unwrap();
    let x = ops::reshape(&x, &[n as isize, 28, 28, 1]).unwrap();
    (x, ops::gather(&y, &idx, 0).unwrap())
}

fn train_bits(x: &Tensor, y: &Tensor) -> Vec<u32> {
    set_random_seed(2024);
    clear_session();
    let mut model = seed_cnn();
    model
        .compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    model
        .fit(x, y)
        .epochs(1)
        .batch_size(32)
        .verbose(0)
        .run()
        .unwrap();
    model
        .get_weights()
        .iter()
        .flat_map(|w| w.to_vec::<f32>().unwrap())
        .map(f32::to_bits)
        .collect()
}

#[test]
fn one_epoch_is_bit_identical_on_one_and_two_threads() {
    let (x, y) = mnist_subset(256);
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let one = pool(1).install(|| train_bits(&x, &y));
    let two = pool(2).install(|| train_bits(&x, &y));
    assert_eq!(one.len(), 225_034);
    assert!(one == two, "weights differ between 1 and 2 threads");
}
