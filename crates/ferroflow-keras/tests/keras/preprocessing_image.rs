//! Image preprocessing layers: `Resizing`, `CenterCrop`, `RandomFlip`, `RandomRotation`,
//! `RandomZoom`, `RandomTranslation`, `RandomContrast`. Deterministic configurations (and
//! degenerate factor ranges, which make the random layers deterministic) are compared with real
//! Keras 3.15 (`fixtures/preprocessing_image_ref.py` prints the constants below); random
//! behaviour is checked for inference identity, value ranges, per-call variation and seed
//! reproducibility.

#![allow(clippy::excessive_precision)]

use ferroflow_core::{ops, DType, Error, Tensor};
use ferroflow_keras::layers::{
    CenterCrop, Layer, LayerHandle, RandomBrightness, RandomContrast, RandomCrop, RandomFlip,
    RandomRotation, RandomTranslation, RandomZoom, Resizing,
};
use ferroflow_keras::models::Sequential;
use ferroflow_keras::Input;

/// The fixture's inputs: flat element `i` is `((i·7) mod 11)·10`.
fn img(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i * 7) % 11) as f32 * 10.0).collect();
    Tensor::from_vec(v, shape).unwrap()
}

fn vals(x: &Tensor) -> Vec<f64> {
    x.to_f64_vec()
}

fn close(got: &[f64], want: &[f32], tol: f64) {
    assert_eq!(got.len(), want.len(), "length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w as f64).abs() <= tol * (1.0 + (w as f64).abs()),
            "element {i}: {g} vs {w}"
        );
    }
}

// ---- values printed by fixtures/preprocessing_image_ref.py (Keras 3.15) ----
// shape [1, 3, 5, 1]
const RESIZE_CROP: &[f32] = &[
    10.0,
    59.000003814697266,
    60.0,
    28.000001907348633,
    0.0,
    40.0,
    50.5,
    62.5,
    58.0,
    30.0,
    70.0,
    42.0,
    65.0,
    88.0,
    60.0,
];
// shape [1, 3, 5, 1]
const RESIZE_PAD: &[f32] = &[
    1.0, 15.5, 52.5, 38.0, 1.0, 1.0, 20.5, 62.5, 15.5, 1.0, 1.0, 25.5, 45.0, 20.5, 1.0,
];
// shape [1, 4, 3, 1]
const RESIZE_NEAREST: &[f32] = &[
    0.0, 30.0, 100.0, 10.0, 40.0, 0.0, 70.0, 100.0, 60.0, 80.0, 0.0, 70.0,
];
// shape [1, 3, 5, 1]
const RESIZE_U8: &[f32] = &[
    31.0, 38.0, 52.0, 68.0, 80.0, 39.0, 50.0, 66.0, 60.0, 28.0, 48.0, 65.0, 44.0, 22.0, 40.0,
];
// shape [1, 4, 6, 1]
const CENTER_CROP_SMALL: &[f32] = &[
    0.0,
    35.0,
    63.33332824707031,
    36.66666030883789,
    65.0,
    100.0,
    12.5,
    47.5,
    75.83332824707031,
    49.16666030883789,
    43.125,
    43.75,
    27.5,
    41.875,
    56.45833206176758,
    57.29166793823242,
    37.5,
    17.5,
    40.0,
    20.0,
    11.666671752929688,
    58.333343505859375,
    50.0,
    30.0,
];
// shape [2, 5, 6, 2]
const ROT90: &[f32] = &[
    25.0,
    40.0,
    32.5,
    47.5,
    47.5,
    34.999996185302734,
    35.0,
    50.0,
    50.0,
    65.0,
    85.0,
    45.0,
    50.0,
    65.0,
    57.5,
    45.0,
    44.999996185302734,
    32.5,
    32.5,
    47.5,
    47.5,
    35.0,
    54.99999237060547,
    14.999992370605469,
    75.0,
    35.0,
    55.0,
    42.5,
    42.5,
    57.5,
    57.50000762939453,
    44.99999237060547,
    44.99999237060547,
    32.50000762939453,
    24.99999237060547,
    40.00001907348633,
    45.0,
    60.0,
    52.5,
    67.5,
    67.5,
    55.0,
    55.000003814697266,
    42.5,
    42.5,
    57.5,
    50.00001907348633,
    64.99999237060547,
    15.0,
    85.0,
    49.99999237060547,
    65.00000762939453,
    65.0,
    52.5,
    52.499996185302734,
    67.5,
    67.5,
    55.0000114440918,
    75.0,
    35.0,
    45.0,
    60.0,
    52.5,
    67.5,
    67.5,
    54.999996185302734,
    55.0,
    42.5,
    42.5,
    57.5,
    50.0,
    65.0,
    15.0,
    85.0,
    50.0,
    65.0,
    64.99999237060547,
    52.5,
    52.5,
    67.5,
    67.5,
    55.0,
    74.99999237060547,
    34.99999237060547,
    40.0,
    55.0,
    47.5,
    35.0,
    35.0,
    50.0,
    49.99999237060547,
    64.99999237060547,
    64.99999237060547,
    52.50000762939453,
    44.99999237060547,
    60.00001907348633,
    65.0,
    25.0,
    45.0,
    32.5,
    32.5,
    47.5,
    47.5,
    35.000003814697266,
    35.000003814697266,
    49.999977111816406,
    14.999992370605469,
    84.99999237060547,
    35.0,
    50.0,
    42.5,
    57.5,
    57.5,
    45.0,
    45.00000762939453,
    32.499996185302734,
    32.499996185302734,
    47.499996185302734,
    40.0,
    55.0,
];
// shape [2, 5, 6, 2]
const ROT30_CONST: &[f32] = &[
    3.6649844646453857,
    4.260126113891602,
    35.645748138427734,
    14.927781105041504,
    84.05529022216797,
    51.291656494140625,
    47.79887008666992,
    57.27241516113281,
    16.936628341674805,
    63.253170013427734,
    14.138801574707031,
    18.50154685974121,
    22.489959716796875,
    84.36817932128906,
    48.30040740966797,
    58.17073059082031,
    41.650638580322266,
    43.75556945800781,
    47.63139343261719,
    31.579357147216797,
    49.79559326171875,
    13.612151145935059,
    46.11697769165039,
    47.984901428222656,
    62.548095703125,
    50.048095703125,
    79.4494857788086,
    56.02885437011719,
    68.98316192626953,
    60.16746520996094,
    31.016834259033203,
    67.99038696289062,
    20.550495147705078,
    51.997596740722656,
    37.451900482177734,
    79.951904296875,
    38.367069244384766,
    61.547237396240234,
    50.20440673828125,
    48.22825622558594,
    52.36860275268555,
    41.71074676513672,
    58.34938049316406,
    25.585697174072266,
    51.69959259033203,
    24.33014678955078,
    66.60369110107422,
    31.244686126708984,
    23.34524154663086,
    29.030590057373047,
    83.0633773803711,
    66.35004425048828,
    52.201141357421875,
    68.91101837158203,
    15.944686889648438,
    76.8662109375,
    19.04147720336914,
    9.773192405700684,
    4.022235870361328,
    3.3042714595794678,
    4.023968696594238,
    3.305999994277954,
    34.55503845214844,
    25.28676414489746,
    3.266071319580078,
    71.29165649414062,
    64.246826171875,
    77.27241516113281,
    36.93663024902344,
    83.25316619873047,
    20.837533950805664,
    25.200279235839844,
    40.16944885253906,
    20.860769271850586,
    55.66987609863281,
    28.300403594970703,
    54.41429901123047,
    21.650638580322266,
    67.63139343261719,
    51.57935333251953,
    69.79559326171875,
    33.612152099609375,
    62.81570816040039,
    29.418243408203125,
    54.91582489013672,
    60.83734130859375,
    28.002410888671875,
    59.44948959350586,
    12.009620666503906,
    54.50963592529297,
    45.490379333496094,
    87.9903793334961,
    40.55049514770508,
    71.99759674072266,
    39.16265869140625,
    45.08417510986328,
    55.06580352783203,
    21.668336868286133,
    66.38784790039062,
    30.204402923583984,
    48.4206428527832,
    32.36860275268555,
    78.3493881225586,
    45.585697174072266,
    71.69960021972656,
    44.33014678955078,
    68.23287963867188,
    48.9241828918457,
    12.283761024475098,
    16.64651107788086,
    16.746826171875,
    63.063377380371094,
    22.72758674621582,
    35.7531852722168,
    28.708345413208008,
    96.73394012451172,
    29.40045928955078,
    20.13217544555664,
    4.381217956542969,
    3.6632535457611084,
];
// shape [2, 5, 6, 2]
const ZOOM_OUT: &[f32] = &[
    7.5, 77.5, 7.5, 77.5, 52.5, 40.0, 70.0, 57.5, 32.5, 20.0, 32.5, 20.0, 42.5, 57.5, 42.5, 57.5,
    46.25, 61.25, 63.75, 37.5, 26.25, 41.25, 26.25, 41.25, 37.5, 80.0, 37.5, 80.0, 82.5, 42.5,
    17.5, 60.0, 62.5, 22.5, 62.5, 22.5, 73.75, 47.5, 73.75, 47.5, 36.25, 51.25, 53.75, 27.5, 57.5,
    72.5, 57.5, 72.5, 67.5, 27.5, 67.5, 27.5, 30.0, 72.5, 47.5, 7.5, 92.5, 52.5, 92.5, 52.5, 27.5,
    70.0, 27.5, 70.0, 72.5, 32.5, 7.5, 77.5, 52.5, 40.0, 52.5, 40.0, 48.75, 63.75, 48.75, 63.75,
    52.5, 26.25, 42.5, 57.5, 46.25, 61.25, 46.25, 61.25, 57.5, 17.5, 57.5, 17.5, 20.0, 62.5, 37.5,
    80.0, 82.5, 42.5, 82.5, 42.5, 38.75, 53.75, 38.75, 53.75, 42.5, 57.5, 73.75, 47.5, 36.25,
    51.25, 36.25, 51.25, 60.0, 47.5, 60.0, 47.5, 22.5, 92.5, 67.5, 27.5, 30.0, 72.5, 30.0, 72.5,
];
// shape [2, 5, 6, 2]
const ZOOM_HW: &[f32] = &[
    0.0, 70.0, 100.0, 60.0, 20.0, 90.0, 50.0, 10.0, 80.0, 40.0, 70.0, 30.0, 0.0, 70.0, 100.0, 60.0,
    20.0, 90.0, 50.0, 10.0, 80.0, 40.0, 70.0, 30.0, 70.0, 30.0, 60.0, 20.0, 90.0, 50.0, 10.0, 80.0,
    40.0, 0.0, 30.0, 100.0, 30.0, 100.0, 20.0, 90.0, 50.0, 10.0, 80.0, 40.0, 0.0, 70.0, 100.0,
    60.0, 30.0, 100.0, 20.0, 90.0, 50.0, 10.0, 80.0, 40.0, 0.0, 70.0, 100.0, 60.0, 20.0, 90.0,
    10.0, 80.0, 40.0, 0.0, 70.0, 30.0, 100.0, 60.0, 90.0, 50.0, 20.0, 90.0, 10.0, 80.0, 40.0, 0.0,
    70.0, 30.0, 100.0, 60.0, 90.0, 50.0, 90.0, 50.0, 80.0, 40.0, 0.0, 70.0, 30.0, 100.0, 60.0,
    20.0, 50.0, 10.0, 50.0, 10.0, 40.0, 0.0, 70.0, 30.0, 100.0, 60.0, 20.0, 90.0, 10.0, 80.0, 50.0,
    10.0, 40.0, 0.0, 70.0, 30.0, 100.0, 60.0, 20.0, 90.0, 10.0, 80.0,
];
// shape [2, 5, 6, 2]
const TRANSLATE: &[f32] = &[
    45.0, 60.0, 75.0, 35.0, 50.0, 65.0, 25.0, 40.0, 40.0, 0.0, 40.0, 0.0, 45.0, 60.0, 75.0, 35.0,
    50.0, 65.0, 25.0, 40.0, 40.0, 0.0, 40.0, 0.0, 52.5, 67.5, 55.0, 42.5, 57.5, 45.0, 32.5, 47.5,
    20.0, 35.0, 20.0, 35.0, 67.5, 55.0, 42.5, 57.5, 45.0, 32.5, 47.5, 35.0, 35.0, 50.0, 35.0, 50.0,
    55.0, 42.5, 57.5, 45.0, 32.5, 47.5, 35.0, 50.0, 50.0, 65.0, 50.0, 65.0, 65.0, 25.0, 40.0, 55.0,
    15.0, 85.0, 45.0, 60.0, 60.0, 20.0, 60.0, 20.0, 65.0, 25.0, 40.0, 55.0, 15.0, 85.0, 45.0, 60.0,
    60.0, 20.0, 60.0, 20.0, 45.0, 32.5, 47.5, 35.0, 50.0, 65.0, 52.5, 67.5, 40.0, 55.0, 40.0, 55.0,
    32.5, 47.5, 35.0, 50.0, 65.0, 52.5, 67.5, 55.0, 55.0, 70.0, 55.0, 70.0, 47.5, 35.0, 50.0, 65.0,
    52.5, 67.5, 55.0, 42.5, 70.0, 30.0, 70.0, 30.0,
];
// shape [2, 5, 6, 2]
const CONTRAST: &[f32] = &[
    0.0,
    79.83333587646484,
    20.0,
    124.83332824707031,
    65.0,
    4.833332061767578,
    110.0,
    49.833335876464844,
    0.0,
    94.83332824707031,
    35.0,
    0.0,
    80.0,
    19.83333396911621,
    125.0,
    64.83333587646484,
    5.0,
    109.83332824707031,
    50.0,
    0.0,
    95.0,
    34.833335876464844,
    0.0,
    79.83333587646484,
    20.0,
    124.83332824707031,
    65.0,
    4.833332061767578,
    110.0,
    49.833335876464844,
    0.0,
    94.83332824707031,
    35.0,
    0.0,
    80.0,
    19.83333396911621,
    125.0,
    64.83333587646484,
    5.0,
    109.83332824707031,
    50.0,
    0.0,
    95.0,
    34.833335876464844,
    0.0,
    79.83333587646484,
    20.0,
    124.83332824707031,
    65.0,
    4.833332061767578,
    110.0,
    49.833335876464844,
    0.0,
    94.83332824707031,
    35.0,
    0.0,
    80.0,
    19.83333396911621,
    125.0,
    64.83333587646484,
    6.0,
    109.0,
    51.0,
    0.0,
    96.0,
    34.0,
    0.0,
    79.0,
    21.0,
    124.0,
    66.0,
    4.0,
    111.0,
    49.0,
    0.0,
    94.0,
    36.0,
    0.0,
    81.0,
    19.0,
    126.0,
    64.0,
    6.0,
    109.0,
    51.0,
    0.0,
    96.0,
    34.0,
    0.0,
    79.0,
    21.0,
    124.0,
    66.0,
    4.0,
    111.0,
    49.0,
    0.0,
    94.0,
    36.0,
    0.0,
    81.0,
    19.0,
    126.0,
    64.0,
    6.0,
    109.0,
    51.0,
    0.0,
    96.0,
    34.0,
    0.0,
    79.0,
    21.0,
    124.0,
    66.0,
    4.0,
    111.0,
    49.0,
    0.0,
    94.0,
];

#[test]
fn resizing_matches_keras() {
    let x = img(&[1, 6, 4, 1]);
    let call = |l: Resizing, x: &Tensor| LayerHandle::new(l).call(x, false).unwrap();
    let y = call(Resizing::new(3, 5).crop_to_aspect_ratio(true), &x);
    assert_eq!(y.shape(), &[1, 3, 5, 1]);
    close(&vals(&y), RESIZE_CROP, 1e-5);
    let y = call(
        Resizing::new(3, 5)
            .pad_to_aspect_ratio(true)
            .fill_value(1.0),
        &x,
    );
    close(&vals(&y), RESIZE_PAD, 1e-5);
    let y = call(Resizing::new(4, 3).interpolation("nearest"), &x);
    close(&vals(&y), RESIZE_NEAREST, 0.0);
    // uint8 in, uint8 out (rounded, saturated), as Keras.
    let xu = ops::cast(&x, DType::U8).unwrap();
    let y = call(Resizing::new(3, 5).interpolation("bicubic"), &xu);
    assert_eq!(y.dtype(), DType::U8);
    close(&vals(&y), RESIZE_U8, 0.0);
    // Unbatched input; the output shape rule.
    let y = call(Resizing::new(2, 3), &img(&[6, 4, 3]));
    assert_eq!(y.shape(), &[2, 3, 3]);
    let out = LayerHandle::new(Resizing::new(2, 3))
        .compute_output_shape(&[vec![None, Some(6), Some(4), Some(3)]])
        .unwrap();
    assert_eq!(out[0], vec![None, Some(2), Some(3), Some(3)]);
}

#[test]
fn resizing_errors() {
    let x = img(&[1, 6, 4, 1]);
    let e = LayerHandle::new(Resizing::new(3, 5).interpolation("lanczos7"))
        .call(&x, false)
        .unwrap_err();
    assert!(e.to_string().contains("interpolation"), "{e}");
    let e = LayerHandle::new(
        Resizing::new(3, 5)
            .crop_to_aspect_ratio(true)
            .pad_to_aspect_ratio(true),
    )
    .call(&x, false)
    .unwrap_err();
    assert!(e.to_string().contains("pad_to_aspect_ratio"), "{e}");
    assert!(LayerHandle::new(Resizing::new(0, 5))
        .call(&x, false)
        .is_err());
    let e = LayerHandle::new(Resizing::new(3, 5))
        .call(&img(&[6, 4]), false)
        .unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("rank"),
        "{e}"
    );
}

#[test]
fn center_crop_crops_and_smart_resizes() {
    let x = img(&[2, 5, 6, 1]);
    let xv = vals(&x);
    let y = LayerHandle::new(CenterCrop::new(3, 2))
        .call(&x, true)
        .unwrap();
    assert_eq!(y.shape(), &[2, 3, 2, 1]);
    // Window starts at ((5-3)//2, (6-2)//2) = (1, 2).
    let yv = vals(&y);
    for b in 0..2 {
        for r in 0..3 {
            for c in 0..2 {
                assert_eq!(yv[(b * 3 + r) * 2 + c], xv[(b * 5 + r + 1) * 6 + c + 2]);
            }
        }
    }
    // Smaller than the target: Keras's smart_resize.
    let y = LayerHandle::new(CenterCrop::new(4, 6))
        .call(&img(&[1, 3, 5, 1]), false)
        .unwrap();
    assert_eq!(y.shape(), &[1, 4, 6, 1]);
    close(&vals(&y), CENTER_CROP_SMALL, 1e-5);
    // uint8 is cast to float32; the shape rule; errors.
    let yu = LayerHandle::new(CenterCrop::new(2, 2))
        .call(&ops::cast(&x, DType::U8).unwrap(), false)
        .unwrap();
    assert_eq!(yu.dtype(), DType::F32);
    let out = LayerHandle::new(CenterCrop::new(2, 3))
        .compute_output_shape(&[vec![Some(9), Some(9), Some(1)]])
        .unwrap();
    assert_eq!(out[0], vec![Some(2), Some(3), Some(1)]);
    assert!(LayerHandle::new(CenterCrop::new(2, 2))
        .call(&img(&[4, 4]), false)
        .is_err());
}

#[test]
fn degenerate_random_layers_match_keras() {
    let x = img(&[2, 5, 6, 2]);
    let run = |l: LayerHandle| vals(&l.call(&x, true).unwrap());
    close(
        &run(LayerHandle::new(RandomRotation::new((0.25, 0.25)))),
        ROT90,
        1e-4,
    );
    close(
        &run(LayerHandle::new(
            RandomRotation::new((1.0 / 12.0, 1.0 / 12.0))
                .fill_mode("constant")
                .fill_value(3.0),
        )),
        ROT30_CONST,
        1e-4,
    );
    close(
        &run(LayerHandle::new(RandomZoom::new((0.5, 0.5)))),
        ZOOM_OUT,
        1e-4,
    );
    close(
        &run(LayerHandle::new(
            RandomZoom::new((-0.4, -0.4))
                .width_factor((0.3, 0.3))
                .fill_mode("wrap")
                .interpolation("nearest"),
        )),
        ZOOM_HW,
        1e-4,
    );
    close(
        &run(LayerHandle::new(
            RandomTranslation::new((0.3, 0.3), (-0.25, -0.25)).fill_mode("nearest"),
        )),
        TRANSLATE,
        1e-4,
    );
    close(
        &run(LayerHandle::new(RandomContrast::new((-0.5, 0.5)))),
        CONTRAST,
        1e-4,
    );
}

/// Every random layer, boxed, for the shared checks.
fn random_layers(seed: Option<u64>) -> Vec<(&'static str, LayerHandle)> {
    macro_rules! s {
        ($l:expr) => {
            match seed {
                Some(s) => LayerHandle::new($l.seed(s)),
                None => LayerHandle::new($l),
            }
        };
    }
    vec![
        ("flip", s!(RandomFlip::new("horizontal_and_vertical"))),
        ("rotation", s!(RandomRotation::new(0.2))),
        ("zoom", s!(RandomZoom::new(0.3).width_factor((-0.2, 0.4)))),
        ("translation", s!(RandomTranslation::new(0.2, (-0.3, 0.1)))),
        ("contrast", s!(RandomContrast::new((0.3, 0.6)))),
        ("brightness", s!(RandomBrightness::new(0.3))),
    ]
}

#[test]
fn random_layers_are_identity_at_inference() {
    let x = img(&[3, 5, 6, 2]);
    for (name, l) in random_layers(None) {
        let y = l.call(&x, false).unwrap();
        assert_eq!(vals(&y), vals(&x), "{name}");
        // Unbatched too; non-float input is cast to float32.
        let xu = ops::cast(&img(&[5, 6, 2]), DType::U8).unwrap();
        let y = l.call(&xu, false).unwrap();
        assert_eq!(y.dtype(), DType::F32, "{name}");
        assert_eq!(y.shape(), &[5, 6, 2], "{name}");
    }
}

#[test]
fn random_layers_reproducible_and_varying() {
    let x = img(&[8, 7, 6, 2]);
    let runs = |seed: u64| -> Vec<Vec<Vec<f64>>> {
        random_layers(Some(seed))
            .into_iter()
            .map(|(_, l)| (0..3).map(|_| vals(&l.call(&x, true).unwrap())).collect())
            .collect()
    };
    let (a, b, c) = (runs(11), runs(11), runs(12));
    assert_eq!(a, b, "same seed, same sequence");
    let names = [
        "flip",
        "rotation",
        "zoom",
        "translation",
        "contrast",
        "brightness",
    ];
    for (i, name) in names.iter().enumerate() {
        assert_ne!(a[i][0], a[i][1], "{name}: calls differ");
        assert_ne!(a[i][0], c[i][0], "{name}: seeds differ");
        assert_eq!(a[i][0].len(), x.num_elements(), "{name}: shape kept");
    }
    // The global seed drives unseeded layers.
    let global = |s: u64| {
        ferroflow_keras::utils::set_random_seed(s);
        let l = LayerHandle::new(RandomRotation::new(0.3));
        vals(&l.call(&x, true).unwrap())
    };
    assert_eq!(global(5), global(5));
}

#[test]
fn random_flip_flips_whole_images() {
    let x = img(&[16, 3, 4, 1]);
    let xv = vals(&x);
    for mode in ["horizontal", "vertical", "horizontal_and_vertical"] {
        let y = vals(
            &LayerHandle::new(RandomFlip::new(mode).seed(3))
                .call(&x, true)
                .unwrap(),
        );
        let mut flipped = 0;
        for b in 0..16 {
            let im = &xv[b * 12..(b + 1) * 12];
            let out = &y[b * 12..(b + 1) * 12];
            let f: Vec<f64> = (0..12)
                .map(|i| {
                    let (r, c) = (i / 4, i % 4);
                    let (r, c) = match mode {
                        "horizontal" => (r, 3 - c),
                        "vertical" => (2 - r, c),
                        _ => (2 - r, 3 - c),
                    };
                    im[r * 4 + c]
                })
                .collect();
            if out == f.as_slice() {
                flipped += 1;
            } else {
                assert_eq!(out, im, "{mode}: image {b} neither flipped nor kept");
            }
        }
        assert!(
            (2..=14).contains(&flipped),
            "{mode}: {flipped} of 16 flipped"
        );
    }
    let e = LayerHandle::new(RandomFlip::new("diagonal"))
        .call(&x, true)
        .unwrap_err();
    assert!(e.to_string().contains("diagonal"), "{e}");
}

#[test]
fn random_value_ranges() {
    // Constant images stay constant under rotation/zoom/translation with reflect filling.
    let ones = ops::fill(&[4, 9, 9, 3], DType::F32, 2.5);
    for (name, l) in random_layers(Some(1)).into_iter().skip(1).take(3) {
        let y = vals(&l.call(&ones, true).unwrap());
        assert!(y.iter().all(|&v| (v - 2.5).abs() < 1e-5), "{name}");
    }
    // Contrast keeps the per-image, per-channel mean unless clipped, and stays in value_range.
    let x = Tensor::from_vec(
        (0..4 * 3 * 3)
            .map(|i| 0.3 + 0.4 * ((i * 5) % 7) as f32 / 7.0)
            .collect::<Vec<_>>(),
        &[4, 3, 3, 1],
    )
    .unwrap();
    let l = LayerHandle::new(
        RandomContrast::new((0.2, 0.9))
            .value_range(0.0, 1.0)
            .seed(9),
    );
    let y = vals(&l.call(&x, true).unwrap());
    let xv = vals(&x);
    assert!(y.iter().all(|v| (0.0..=1.0).contains(v)));
    for b in 0..4 {
        let mx: f64 = xv[b * 9..(b + 1) * 9].iter().sum::<f64>() / 9.0;
        let my: f64 = y[b * 9..(b + 1) * 9].iter().sum::<f64>() / 9.0;
        assert!((mx - my).abs() < 1e-5, "image {b}: mean {mx} -> {my}");
        // contrast factor in [0.8, 1.9): deviations scale by it
        let k = (y[b * 9] - my) / (xv[b * 9] - mx);
        assert!((0.8 - 1e-4..1.9).contains(&k), "factor {k}");
    }
    // A rotation by a full factor range of 0 is the identity; translations with constant fill
    // keep values within [min(fill, x), max(fill, x)].
    let x = img(&[2, 5, 6, 2]);
    let y = LayerHandle::new(RandomRotation::new(0.0))
        .call(&x, true)
        .unwrap();
    close(&vals(&y), &x.to_vec::<f32>().unwrap(), 1e-5);
    let y = vals(
        &LayerHandle::new(
            RandomTranslation::new(0.5, 0.5)
                .fill_mode("constant")
                .fill_value(-1.0)
                .seed(3),
        )
        .call(&x, true)
        .unwrap(),
    );
    assert!(y.iter().all(|&v| (-1.0..=100.0).contains(&v)));
}

#[test]
fn random_layer_argument_errors() {
    let x = img(&[1, 4, 4, 1]);
    let err = |l: LayerHandle| l.call(&x, true).unwrap_err().to_string();
    assert!(err(LayerHandle::new(RandomRotation::new(1.5))).contains("factor"));
    assert!(err(LayerHandle::new(
        RandomRotation::new(0.1).fill_mode("mirror")
    ))
    .contains("fill_mode"));
    assert!(err(LayerHandle::new(
        RandomRotation::new(0.1).interpolation("bicubic")
    ))
    .contains("interpolation"));
    assert!(err(LayerHandle::new(RandomZoom::new(-1.0))).contains("height_factor"));
    assert!(err(LayerHandle::new(RandomZoom::new(0.2).width_factor(1.5))).contains("width_factor"));
    assert!(
        err(LayerHandle::new(RandomTranslation::new(0.1, (0.0, 1.2)))).contains("width_factor")
    );
    assert!(err(LayerHandle::new(RandomContrast::new(1.5))).contains("factor"));
    assert!(err(LayerHandle::new(
        RandomContrast::new(0.2).value_range(1.0, 0.0)
    ))
    .contains("value_range"));
    // Rank errors name the layer.
    let l = LayerHandle::new(RandomZoom::new(0.2).named("zoomy"));
    let e = l.call(&img(&[4, 4]), true).unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("zoomy"),
        "{e}"
    );
}

#[test]
fn augmentation_in_a_sequential_model() {
    let mut model = Sequential::new();
    model.add(Input::new(&[8, 8, 3])).unwrap();
    model.add(RandomFlip::new("horizontal").seed(1)).unwrap();
    model.add(RandomRotation::new(0.1).seed(2)).unwrap();
    model.add(RandomZoom::new(0.1).seed(3)).unwrap();
    model.add(Resizing::new(4, 4)).unwrap();
    model.add(CenterCrop::new(2, 2)).unwrap();
    let x = img(&[2, 8, 8, 3]);
    let y = model.predict(&x).verbose(0).run().unwrap();
    assert_eq!(y.shape(), &[2, 2, 2, 3]);
    // predict runs in inference mode: only the resize and crop act.
    let want = LayerHandle::new(CenterCrop::new(2, 2))
        .call(
            &ops::resize(&x, [4, 4], ops::ResizeMethod::Bilinear).unwrap(),
            false,
        )
        .unwrap();
    assert_eq!(vals(&y), vals(&want));
}

#[test]
fn random_brightness_adds_a_clipped_offset() {
    let x = img(&[2, 3, 3, 1]);
    // Degenerate range: delta = 0.1·255 = 25.5 for every image, then clipped to [0, 255].
    let y = vals(
        &LayerHandle::new(RandomBrightness::new((0.1, 0.1)))
            .call(&x, true)
            .unwrap(),
    );
    for (g, v) in y.iter().zip(vals(&x)) {
        assert!((g - (v + 25.5).min(255.0)).abs() < 1e-4, "{g} vs {v}");
    }
    let y = vals(
        &LayerHandle::new(RandomBrightness::new(-0.5).value_range(0.0, 50.0).seed(4))
            .call(&x, true)
            .unwrap(),
    );
    assert!(y.iter().all(|v| (0.0..=50.0).contains(v)));
    assert!(LayerHandle::new(RandomBrightness::new(1.5))
        .call(&x, true)
        .is_err());
}

#[test]
fn random_crop_windows_and_inference() {
    let x = img(&[3, 7, 8, 2]);
    let xv = vals(&x);
    let layer = LayerHandle::new(RandomCrop::new(3, 4).seed(6));
    let mut offsets = std::collections::HashSet::new();
    for _ in 0..6 {
        let y = layer.call(&x, true).unwrap();
        assert_eq!(y.shape(), &[3, 3, 4, 2]);
        let yv = vals(&y);
        // Find the window of image 0, then check every image uses the same offset.
        let found = (0..=4)
            .flat_map(|t| (0..=4).map(move |l| (t, l)))
            .find(|&(t, l)| {
                (0..3).all(|b| {
                    (0..3).all(|r| {
                        (0..4).all(|c| {
                            (0..2).all(|ch| {
                                yv[((b * 3 + r) * 4 + c) * 2 + ch]
                                    == xv[((b * 7 + r + t) * 8 + c + l) * 2 + ch]
                            })
                        })
                    })
                })
            });
        offsets.insert(found.expect("a window of the input, shared by the batch"));
    }
    assert!(offsets.len() > 1, "offsets vary across calls");
    // Inference: 7x8 cropped to the 3:4 ratio is 6x8 from row int(1/2) = 0; then bilinear to 3x4,
    // an exact 2x downscale that averages 2x2 blocks.
    let y = vals(&layer.call(&x, false).unwrap());
    for b in 0..3 {
        for r in 0..3 {
            for c in 0..4 {
                for ch in 0..2 {
                    let px = |rr: usize, cc: usize| xv[((b * 7 + rr) * 8 + cc) * 2 + ch];
                    let want = (px(2 * r, 2 * c)
                        + px(2 * r, 2 * c + 1)
                        + px(2 * r + 1, 2 * c)
                        + px(2 * r + 1, 2 * c + 1))
                        / 4.0;
                    assert!((y[((b * 3 + r) * 4 + c) * 2 + ch] - want).abs() < 1e-4);
                }
            }
        }
    }
    assert!(LayerHandle::new(RandomCrop::new(0, 2))
        .call(&x, true)
        .is_err());
}
