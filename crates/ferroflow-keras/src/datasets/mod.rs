//! `keras.datasets`: ready-made datasets. For now MNIST from IDX files in a folder (the
//! repository bundles 10,000 real digits in `data/mnist-10k`).

pub mod mnist;
