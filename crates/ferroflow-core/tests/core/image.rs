//! Image ops: `resize` and `ImageProjectiveTransformV3` against values from real TensorFlow
//! 2.21 (`fixtures/image_ref.py` prints the constants below), hand computations (rotation by
//! 90°, identity transforms, whole-pixel shifts), finite-difference gradients in f64, errors, and
//! thread-count independence.

#![allow(clippy::excessive_precision)]

use ferroflow_core::ops::{self, FillMode, Interpolation, ResizeMethod};
use ferroflow_core::testing::{assert_close, check_gradients, test_tensor};
use ferroflow_core::{DType, Error, Tensor};

/// The fixture's inputs: flat element `i` is `((i·7) mod 11) / 2`.
fn img(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i * 7) % 11) as f32 / 2.0).collect();
    Tensor::from_vec(v, shape).unwrap()
}

fn f32s(x: &Tensor) -> Vec<f64> {
    x.to_f64_vec()
}

fn as_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// ---- values printed by fixtures/image_ref.py (TensorFlow 2.21) ----
const RESIZE_BILINEAR_UP: &[f32] = &[
    0.0,
    3.5,
    0.5357143878936768,
    4.035714149475098,
    1.3928571939468384,
    4.892857074737549,
    2.25,
    3.0,
    3.1071431636810303,
    1.1071431636810303,
    3.9642858505249023,
    1.964285969734192,
    4.5,
    2.5,
    0.20000001788139343,
    3.700000047683716,
    0.7357144355773926,
    3.4499998092651367,
    1.5928572416305542,
    3.049999713897705,
    2.450000047683716,
    2.0999999046325684,
    3.307143211364746,
    1.307143211364746,
    4.164285659790039,
    2.164285898208618,
    4.699999809265137,
    2.700000047683716,
    0.5,
    4.0,
    1.0357143878936768,
    2.5714282989501953,
    1.8928571939468384,
    0.28571414947509766,
    2.75,
    0.75,
    3.6071431636810303,
    1.6071431636810303,
    4.464285850524902,
    2.4642858505249023,
    5.0,
    3.0,
    0.8000000715255737,
    4.300000190734863,
    1.3357144594192505,
    2.8714284896850586,
    2.192857265472412,
    0.5857142210006714,
    3.0500001907348633,
    1.0500000715255737,
    3.6714282035827637,
    1.907143235206604,
    2.6428563594818115,
    2.7642860412597656,
    1.9999992847442627,
    3.3000001907348633,
    1.0,
    4.5,
    1.5357143878936768,
    3.0714282989501953,
    2.392857074737549,
    0.7857141494750977,
    3.25,
    1.25,
    3.714284896850586,
    2.1071431636810303,
    1.4285707473754883,
    2.9642858505249023,
    0.0,
    3.5,
];
const RESIZE_BILINEAR_DOWN: &[f32] = &[
    2.0,
    4.125,
    4.125,
    2.125,
    2.124999523162842,
    2.8750009536743164,
    2.125,
    2.875,
    2.875,
    0.875,
    0.8749995231628418,
    3.0000009536743164,
];
const RESIZE_NEAREST_UP: &[f32] = &[
    0.0, 3.5, 0.0, 3.5, 1.5, 5.0, 3.0, 1.0, 3.0, 1.0, 4.5, 2.5, 4.5, 2.5, 0.0, 3.5, 0.0, 3.5, 1.5,
    5.0, 3.0, 1.0, 3.0, 1.0, 4.5, 2.5, 4.5, 2.5, 0.5, 4.0, 0.5, 4.0, 2.0, 0.0, 3.5, 1.5, 3.5, 1.5,
    5.0, 3.0, 5.0, 3.0, 1.0, 4.5, 1.0, 4.5, 2.5, 0.5, 4.0, 2.0, 4.0, 2.0, 0.0, 3.5, 0.0, 3.5, 1.0,
    4.5, 1.0, 4.5, 2.5, 0.5, 4.0, 2.0, 4.0, 2.0, 0.0, 3.5, 0.0, 3.5,
];
const RESIZE_NEAREST_DOWN: &[f32] = &[1.0, 4.5, 4.0, 2.0, 1.5, 5.0, 0.0, 3.5, 3.0, 1.0, 0.5, 4.0];
const RESIZE_BICUBIC_UP: &[f32] = &[
    -0.1565873622894287,
    3.310506582260132,
    0.3584469258785248,
    4.2101569175720215,
    1.3484923839569092,
    5.426556587219238,
    2.2122371196746826,
    3.1958940029144287,
    3.075981855392456,
    0.894550085067749,
    4.066027641296387,
    1.8399162292480469,
    4.581061363220215,
    2.581061363220215,
    0.0343569815158844,
    3.687370538711548,
    0.5493913292884827,
    3.6017467975616455,
    1.5394366979599,
    3.3045201301574707,
    2.3877692222595215,
    2.0666608810424805,
    3.278062343597412,
    1.1574790477752686,
    4.4290056228637695,
    2.120572328567505,
    5.038135528564453,
    2.772006034851074,
    0.3811753988265991,
    4.31686544418335,
    0.8962097764015198,
    2.7332077026367188,
    1.8862552642822266,
    0.13462834060192108,
    2.75,
    0.40625,
    3.6137447357177734,
    1.613744854927063,
    4.603790283203125,
    2.603790283203125,
    5.118824481964111,
    3.1188244819641113,
    0.7279938459396362,
    4.683218479156494,
    1.243028163909912,
    2.9960391521453857,
    2.2330737113952637,
    0.23842468857765198,
    3.3198437690734863,
    0.6143590211868286,
    3.7994179725646973,
    1.9681265354156494,
    2.4611592292785645,
    2.9600348472595215,
    1.6145585775375366,
    3.4656429290771484,
    0.918938159942627,
    4.854628086090088,
    1.4339725971221924,
    3.270970582962036,
    2.4240176677703857,
    0.6723911762237549,
    3.6574742794036865,
    0.9440125823020935,
    3.88437557220459,
    2.1515073776245117,
    1.0147637128829956,
    3.1415529251098633,
    -0.7273991107940674,
    3.6565871238708496,
];
const RESIZE_BICUBIC_DOWN: &[f32] = &[
    1.931128978729248,
    4.4492268562316895,
    4.14503812789917,
    2.145038366317749,
    2.26071834564209,
    3.054417610168457,
    1.945582628250122,
    2.73928165435791,
    2.85496187210083,
    0.8549618124961853,
    0.5507731437683105,
    3.068871259689331,
];
const ROT: [f32; 8] = [
    0.8660253882408142,
    -0.5,
    1.0179492235183716,
    0.5,
    0.8660253882408142,
    -0.7990381121635437,
    0.0,
    0.0,
];
const PROJ: [f32; 8] = [
    0.8999999761581421,
    0.20000000298023224,
    0.699999988079071,
    -0.30000001192092896,
    1.100000023841858,
    -0.4000000059604645,
    0.05000000074505806,
    -0.07999999821186066,
];
const PT_NEAREST_REFLECT: &[f32] = &[
    3.5, 1.5, 5.0, 4.0, 4.0, 3.5, 4.5, 2.5, 1.5, 5.0, 1.0, 4.5, 3.5, 1.5, 2.5, 2.0, 2.0, 1.0, 4.5,
    2.5, 2.0, 0.0, 0.0, 3.5, 1.5, 3.0, 0.0, 3.5, 3.5, 1.5, 4.0, 2.0, 4.5, 2.5, 2.5, 3.0, 1.0, 4.5,
    3.5, 3.5,
];
const PT_NEAREST_WRAP: &[f32] = &[
    1.0, 4.5, 5.0, 4.0, 1.0, 3.5, 4.5, 2.5, 1.5, 5.0, 1.0, 4.5, 3.5, 1.5, 2.5, 5.0, 2.0, 1.0, 1.5,
    5.0, 5.0, 3.0, 3.0, 1.0, 4.5, 3.0, 0.0, 3.5, 1.0, 1.5, 4.0, 2.0, 4.5, 2.5, 5.0, 0.0, 3.5, 4.5,
    0.5, 0.5,
];
const PT_NEAREST_CONSTANT: &[f32] = &[
    0.5, 1.5, 5.0, 4.0, 4.0, 3.5, 4.5, 2.5, 1.5, 5.0, 1.0, 4.5, 3.5, 1.5, 2.5, 2.0, 2.0, 1.0, 4.5,
    0.5, 2.0, 0.5, 0.5, 0.5, 0.5, 3.0, 0.0, 3.5, 3.5, 1.5, 4.0, 2.0, 4.5, 2.5, 0.5, 0.5, 1.0, 4.5,
    3.5, 0.5,
];
const PT_NEAREST_NEAREST: &[f32] = &[
    3.5, 1.5, 5.0, 4.0, 4.0, 3.5, 4.5, 2.5, 1.5, 5.0, 1.0, 4.5, 3.5, 1.5, 2.5, 2.0, 2.0, 1.0, 4.5,
    2.5, 2.0, 0.0, 0.0, 3.5, 1.5, 3.0, 0.0, 3.5, 3.5, 1.5, 4.0, 2.0, 4.5, 2.5, 2.5, 3.0, 1.0, 4.5,
    3.5, 3.5,
];
const PT_BILINEAR_REFLECT: &[f32] = &[
    3.464101552963257,
    1.732050895690918,
    3.4969940185546875,
    2.9885776042938232,
    4.200962066650391,
    1.8798096179962158,
    3.2990384101867676,
    2.0669872760772705,
    1.473076343536377,
    4.642348289489746,
    0.99583500623703,
    2.4216766357421875,
    2.650120258331299,
    2.7009618282318115,
    1.6465129852294922,
    1.7990379333496094,
    1.5310887098312378,
    1.6740379333496094,
    4.267949104309082,
    2.535898208618164,
    2.5999999046325684,
    0.952380895614624,
    0.9545453786849976,
    3.4782609939575195,
    2.6666672229766846,
    2.8043479919433594,
    0.7010312080383301,
    2.362745761871338,
    2.771028518676758,
    1.5,
    3.5238094329833984,
    1.6187350749969482,
    3.214576244354248,
    2.73232364654541,
    2.076923131942749,
    3.5789475440979004,
    1.5679011344909668,
    2.7906978130340576,
    3.6978020668029785,
    3.0375447273254395,
];
const PT_BILINEAR_WRAP: &[f32] = &[
    1.0628223419189453,
    4.093911170959473,
    3.4969940185546875,
    2.9885776042938232,
    1.2009618282318115,
    1.8798096179962158,
    3.2990384101867676,
    2.0669872760772705,
    1.473076343536377,
    4.642348289489746,
    0.99583500623703,
    2.4216766357421875,
    2.650120258331299,
    2.7009618282318115,
    1.6465129852294922,
    4.799037933349609,
    1.5310887098312378,
    1.6740379333496094,
    1.9060890674591064,
    4.937178134918213,
    3.950000047683716,
    3.952381134033203,
    2.454545497894287,
    0.9565215110778809,
    2.7083323001861572,
    2.8043479919433594,
    0.7010312080383301,
    2.362745761871338,
    2.275700092315674,
    1.5,
    3.5238094329833984,
    1.6187350749969482,
    3.214576244354248,
    2.73232364654541,
    4.576923370361328,
    0.5789475440979004,
    2.5061731338500977,
    2.7906978130340576,
    0.6978020668029785,
    1.7645378112792969,
];
const PT_BILINEAR_CONSTANT: &[f32] = &[
    1.0956714153289795,
    1.3636207580566406,
    3.4969940185546875,
    2.9885776042938232,
    2.41690993309021,
    1.8798096179962158,
    3.2990384101867676,
    2.0669872760772705,
    1.473076343536377,
    4.642348289489746,
    0.99583500623703,
    2.4216766357421875,
    2.650120258331299,
    2.7009618282318115,
    1.6465129852294922,
    1.1728357076644897,
    1.5310887098312378,
    1.6740379333496094,
    3.1411900520324707,
    0.9091387987136841,
    1.7600001096725464,
    0.6507935523986816,
    0.5413223505020142,
    0.5,
    0.5,
    2.8043479919433594,
    0.7010312080383301,
    2.362745761871338,
    2.3465373516082764,
    1.0436862707138062,
    3.5238094329833984,
    1.6187350749969482,
    3.214576244354248,
    2.73232364654541,
    1.2581360340118408,
    1.0671738386154175,
    1.3437734842300415,
    2.7906978130340576,
    2.4327383041381836,
    0.5,
];
const PT_BILINEAR_NEAREST: &[f32] = &[
    3.464101552963257,
    1.732050895690918,
    3.4969940185546875,
    2.9885776042938232,
    4.200962066650391,
    1.8798096179962158,
    3.2990384101867676,
    2.0669872760772705,
    1.473076343536377,
    4.642348289489746,
    0.99583500623703,
    2.4216766357421875,
    2.650120258331299,
    2.7009618282318115,
    1.6465129852294922,
    1.7990379333496094,
    1.5310887098312378,
    1.6740379333496094,
    4.267949104309082,
    2.535898208618164,
    2.5999999046325684,
    0.952380895614624,
    0.9545453786849976,
    3.3478260040283203,
    2.333333969116211,
    2.8043479919433594,
    0.7010312080383301,
    2.362745761871338,
    2.771028518676758,
    1.5,
    3.5238094329833984,
    1.6187350749969482,
    3.214576244354248,
    2.73232364654541,
    2.076923131942749,
    3.5789475440979004,
    1.5679011344909668,
    2.7906978130340576,
    3.6978020668029785,
    3.2708334922790527,
];
const ZOOM_BILINEAR_REFLECT: &[f32] = &[
    2.0, 1.5, 0.5, 2.375, 2.0, 5.0, 1.75, 3.5, 4.0, 5.0, 1.0, 1.875, 2.25, 2.75, 1.0, 2.5, 2.0,
    1.0, 1.5, 2.5,
];
const ZOOM_BILINEAR_WRAP: &[f32] = &[
    0.5, 1.5, 1.0, 1.5, 1.0, 0.5, 1.5, 1.0, 1.5, 1.0, 4.5, 2.75, 2.25, 2.75, 2.25, 3.0, 4.0, 3.5,
    4.0, 3.5,
];

fn transforms(rows: &[[f32; 8]]) -> Tensor {
    let v: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_vec(v, &[rows.len(), 8]).unwrap()
}

#[test]
fn resize_matches_tensorflow() {
    let up = img(&[1, 3, 4, 2]);
    let down = img(&[1, 5, 7, 2]);
    let cases: [(ResizeMethod, &[f32], &[f32]); 3] = [
        (
            ResizeMethod::Bilinear,
            RESIZE_BILINEAR_UP,
            RESIZE_BILINEAR_DOWN,
        ),
        (
            ResizeMethod::Nearest,
            RESIZE_NEAREST_UP,
            RESIZE_NEAREST_DOWN,
        ),
        (
            ResizeMethod::Bicubic,
            RESIZE_BICUBIC_UP,
            RESIZE_BICUBIC_DOWN,
        ),
    ];
    for (m, want_up, want_down) in cases {
        let y = ops::resize(&up, [5, 7], m).unwrap();
        assert_eq!(y.shape(), &[1, 5, 7, 2]);
        assert_close(&f32s(&y), &as_f64(want_up), 1e-5, 1e-5);
        let y = ops::resize(&down, [2, 3], m).unwrap();
        assert_eq!(y.shape(), &[1, 2, 3, 2]);
        assert_close(&f32s(&y), &as_f64(want_down), 1e-5, 1e-5);
    }
}

#[test]
fn resize_hand_cases() {
    // Same size: the identity, whatever the method.
    let x = img(&[2, 3, 4, 1]);
    for m in [
        ResizeMethod::Bilinear,
        ResizeMethod::Nearest,
        ResizeMethod::Bicubic,
    ] {
        assert_eq!(
            ops::resize(&x, [3, 4], m).unwrap().to_vec::<f32>().unwrap(),
            x.to_vec::<f32>().unwrap()
        );
    }
    // Exact 2x upscaling of [a, b] with half-pixel centers samples at -0.25, 0.25, 0.75, 1.25.
    let x = Tensor::from_vec(vec![2.0f64, 6.0], &[1, 2, 1]).unwrap();
    let y = ops::resize(&x, [1, 4], ResizeMethod::Bilinear).unwrap();
    assert_eq!(y.shape(), &[1, 4, 1]);
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![2.0, 3.0, 5.0, 6.0]);
    let y = ops::resize(&x, [1, 4], ResizeMethod::Nearest).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![2.0, 2.0, 6.0, 6.0]);
    // 2x downscaling with bilinear averages pairs (samples at 0.5, 2.5).
    let x = Tensor::from_vec(vec![1.0f32, 3.0, 10.0, 20.0], &[1, 4, 1]).unwrap();
    let y = ops::resize(&x, [1, 2], ResizeMethod::Bilinear).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 15.0]);
    // f16 runs through f32 and keeps its dtype.
    let h = ops::cast(&x, DType::F16).unwrap();
    assert_eq!(
        ops::resize(&h, [1, 2], ResizeMethod::Bilinear)
            .unwrap()
            .dtype(),
        DType::F16
    );
}

#[test]
fn resize_gradients() {
    for m in [
        ResizeMethod::Bilinear,
        ResizeMethod::Nearest,
        ResizeMethod::Bicubic,
    ] {
        for (shape, size) in [
            ([2, 3, 4, 2], [5, 7]),
            ([1, 5, 6, 1], [2, 4]),
            ([1, 4, 4, 3], [4, 4]),
        ] {
            let x = test_tensor(&shape, 3, -1.0, 1.0);
            check_gradients(|v| ops::resize(&v[0], size, m), &[x.clone()], &[0])
                .unwrap_or_else(|e| panic!("{m:?} {shape:?}->{size:?}: {e}"));
            // The gradient op, and its own gradient (second derivatives).
            let g = test_tensor(&[shape[0], size[0], size[1], shape[3]], 4, -1.0, 1.0);
            check_gradients(
                |v| ops::resize_grad(&v[0], [shape[1], shape[2]], m),
                &[g],
                &[0],
            )
            .unwrap_or_else(|e| panic!("grad {m:?} {shape:?}->{size:?}: {e}"));
        }
    }
    // Rank 3 as well.
    let x = test_tensor(&[3, 2, 2], 5, -1.0, 1.0);
    check_gradients(
        |v| ops::resize(&v[0], [4, 3], ResizeMethod::Bilinear),
        &[x],
        &[0],
    )
    .unwrap();
}

#[test]
fn resize_errors() {
    let x = img(&[1, 3, 4, 2]);
    let e = ops::resize(&x, [0, 3], ResizeMethod::Bilinear).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    assert!(e.to_string().contains("ResizeBilinear"), "{e}");
    let e = ops::resize(&img(&[3, 4]), [2, 2], ResizeMethod::Nearest).unwrap_err();
    assert!(e.to_string().contains("rank 3"), "{e}");
    let i = Tensor::from_vec(vec![1i32; 4], &[1, 2, 2, 1]).unwrap();
    assert!(matches!(
        ops::resize(&i, [2, 2], ResizeMethod::Bilinear),
        Err(Error::DType { .. })
    ));
    assert!(ResizeMethod::parse("lanczos9").is_err());
    assert_eq!(
        ResizeMethod::parse("bicubic").unwrap(),
        ResizeMethod::Bicubic
    );
}

#[test]
fn projective_transform_matches_tensorflow() {
    let x = img(&[2, 4, 5, 1]);
    let t = transforms(&[ROT, PROJ]);
    let cases: [(Interpolation, FillMode, &[f32]); 8] = [
        (
            Interpolation::Nearest,
            FillMode::Reflect,
            PT_NEAREST_REFLECT,
        ),
        (Interpolation::Nearest, FillMode::Wrap, PT_NEAREST_WRAP),
        (
            Interpolation::Nearest,
            FillMode::Constant,
            PT_NEAREST_CONSTANT,
        ),
        (
            Interpolation::Nearest,
            FillMode::Nearest,
            PT_NEAREST_NEAREST,
        ),
        (
            Interpolation::Bilinear,
            FillMode::Reflect,
            PT_BILINEAR_REFLECT,
        ),
        (Interpolation::Bilinear, FillMode::Wrap, PT_BILINEAR_WRAP),
        (
            Interpolation::Bilinear,
            FillMode::Constant,
            PT_BILINEAR_CONSTANT,
        ),
        (
            Interpolation::Bilinear,
            FillMode::Nearest,
            PT_BILINEAR_NEAREST,
        ),
    ];
    for (interp, fill, want) in cases {
        let y = ops::image_projective_transform_v3(&x, &t, [4, 5], 0.5, interp, fill).unwrap();
        assert_eq!(y.shape(), &[2, 4, 5, 1]);
        assert_close(&f32s(&y), &as_f64(want), 1e-5, 1e-5);
    }
    let x0 = img(&[1, 4, 5, 1]);
    let zoom = transforms(&[[2.5, 0.0, -4.0, 0.0, 2.5, -3.5, 0.0, 0.0]]);
    for (fill, want) in [
        (FillMode::Reflect, ZOOM_BILINEAR_REFLECT),
        (FillMode::Wrap, ZOOM_BILINEAR_WRAP),
    ] {
        let y = ops::image_projective_transform_v3(
            &x0,
            &zoom,
            [4, 5],
            0.0,
            Interpolation::Bilinear,
            fill,
        )
        .unwrap();
        assert_close(&f32s(&y), &as_f64(want), 1e-5, 1e-5);
    }
}

/// A hand-written source index along one axis (`None`: the fill value).
type IndexMap = fn(i64) -> Option<i64>;

/// Element `[b, y, x, c]` of an NHWC tensor's values.
fn at(v: &[f64], s: &[usize], b: usize, y: usize, x: usize, c: usize) -> f64 {
    v[((b * s[1] + y) * s[2] + x) * s[3] + c]
}

#[test]
fn projective_transform_hand_cases() {
    let x = img(&[2, 4, 4, 3]);
    let xs = f32s(&x);
    let s = [2, 4, 4, 3];
    // Identity: exact for both interpolations and every fill mode.
    let id = transforms(&[[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]);
    for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
        for fill in [
            FillMode::Reflect,
            FillMode::Wrap,
            FillMode::Constant,
            FillMode::Nearest,
        ] {
            let y = ops::image_projective_transform_v3(&x, &id, [4, 4], 0.0, interp, fill).unwrap();
            assert_eq!(f32s(&y), xs);
        }
    }
    // Rotation by 90° about the center of a square image (Keras's matrix with θ = 90°, rounded
    // exactly): output (x, y) reads input (y, 3 - x) — a transpose followed by a flip.
    let rot90 = transforms(&[[0.0, -1.0, 3.0, 1.0, 0.0, 0.0, 0.0, 0.0]]);
    for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
        let y =
            ops::image_projective_transform_v3(&x, &rot90, [4, 4], 0.0, interp, FillMode::Constant)
                .unwrap();
        let yv = f32s(&y);
        for b in 0..2 {
            for oy in 0..4 {
                for ox in 0..4 {
                    for c in 0..3 {
                        assert_eq!(at(&yv, &s, b, oy, ox, c), at(&xs, &s, b, ox, 3 - oy, c));
                    }
                }
            }
        }
    }
    // Whole-pixel translation right by 1 and down by 2 (output reads input (x-1, y-2)),
    // fill constant 7 / nearest / wrap / reflect, checked against hand-written index maps.
    let shift = transforms(&[[1.0, 0.0, -1.0, 0.0, 1.0, -2.0, 0.0, 0.0]]);
    let maps: [(FillMode, IndexMap); 4] = [
        (FillMode::Constant, |i| (0..4).contains(&i).then_some(i)),
        (FillMode::Nearest, |i| Some(i.clamp(0, 3))),
        (FillMode::Wrap, |i| Some(i.rem_euclid(4))),
        (FillMode::Reflect, |i| Some(if i < 0 { -i - 1 } else { i })),
    ];
    for (fill, map) in maps {
        for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
            let y =
                ops::image_projective_transform_v3(&x, &shift, [4, 4], 7.0, interp, fill).unwrap();
            let yv = f32s(&y);
            for b in 0..2 {
                for oy in 0..4i64 {
                    for ox in 0..4i64 {
                        for c in 0..3 {
                            let want = match (map(oy - 2), map(ox - 1)) {
                                (Some(iy), Some(ix)) => at(&xs, &s, b, iy as usize, ix as usize, c),
                                _ => 7.0,
                            };
                            let got = at(&yv, &s, b, oy as usize, ox as usize, c);
                            assert_eq!(got, want, "{fill:?} {interp:?} at ({b},{oy},{ox},{c})");
                        }
                    }
                }
            }
        }
    }
    // A different output size: the top-left 2x3 window.
    let y = ops::image_projective_transform_v3(
        &x,
        &id,
        [2, 3],
        0.0,
        Interpolation::Bilinear,
        FillMode::Constant,
    )
    .unwrap();
    assert_eq!(y.shape(), &[2, 2, 3, 3]);
    assert_eq!(
        f32s(&y),
        f32s(&ops::crop_to_bounding_box(&x, 0, 0, 2, 3).unwrap())
    );
}

#[test]
fn affine_transform_unbatched_and_per_image() {
    let x = img(&[3, 4, 2]);
    let t = Tensor::from_vec(vec![1.0f32, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0], &[8]).unwrap();
    let y =
        ops::affine_transform(&x, &t, Interpolation::Bilinear, FillMode::Constant, 0.0).unwrap();
    assert_eq!(y.shape(), &[3, 4, 2]);
    let (xv, yv) = (f32s(&x), f32s(&y));
    for r in 0..3 {
        for c in 0..2 {
            assert_eq!(yv[(r * 4) * 2 + c], 0.0);
            for col in 1..4 {
                assert_eq!(yv[(r * 4 + col) * 2 + c], xv[(r * 4 + col - 1) * 2 + c]);
            }
        }
    }
    // Per-image transforms: image 1 identity, image 0 shifted.
    let xb = img(&[2, 3, 4, 1]);
    let tb = transforms(&[
        [1.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    ]);
    let yb =
        ops::affine_transform(&xb, &tb, Interpolation::Nearest, FillMode::Constant, 0.0).unwrap();
    assert_eq!(f32s(&yb)[12..], f32s(&xb)[12..]);
    assert_eq!(f32s(&yb)[0], 0.0);
}

#[test]
fn projective_transform_gradients() {
    let t = transforms(&[ROT, PROJ]);
    let x = test_tensor(&[2, 4, 5, 2], 9, -1.0, 1.0);
    for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
        for fill in [
            FillMode::Reflect,
            FillMode::Wrap,
            FillMode::Constant,
            FillMode::Nearest,
        ] {
            check_gradients(
                |v| ops::image_projective_transform_v3(&v[0], &t, [3, 6], 0.25, interp, fill),
                &[x.clone()],
                &[0],
            )
            .unwrap_or_else(|e| panic!("{interp:?} {fill:?}: {e}"));
            let g = test_tensor(&[2, 3, 6, 2], 10, -1.0, 1.0);
            check_gradients(
                |v| ops::image_projective_transform_grad(&v[0], &t, [4, 5], interp, fill),
                &[g],
                &[0],
            )
            .unwrap_or_else(|e| panic!("grad {interp:?} {fill:?}: {e}"));
        }
    }
    // The transforms get no gradient (None), as in TensorFlow.
    let tape = ferroflow_core::GradientTape::new();
    let tf64 = ops::cast(&t, DType::F64).unwrap();
    tape.watch(&tf64);
    tape.watch(&x);
    let y = ops::image_projective_transform_v3(
        &x,
        &tf64,
        [4, 5],
        0.0,
        Interpolation::Bilinear,
        FillMode::Reflect,
    )
    .unwrap();
    let g = tape.gradient(&y, &[&x, &tf64]).unwrap();
    assert!(g[0].is_some() && g[1].is_none());
}

#[test]
fn projective_transform_errors() {
    let x = img(&[2, 4, 5, 1]);
    let bad_t = Tensor::from_vec(vec![0.0f32; 6], &[1, 6]).unwrap();
    let e = ops::image_projective_transform_v3(
        &x,
        &bad_t,
        [4, 5],
        0.0,
        Interpolation::Bilinear,
        FillMode::Reflect,
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("ImageProjectiveTransformV3"),
        "{e}"
    );
    let t3 = transforms(&[ROT, ROT, ROT]);
    assert!(ops::image_projective_transform_v3(
        &x,
        &t3,
        [4, 5],
        0.0,
        Interpolation::Bilinear,
        FillMode::Reflect
    )
    .is_err());
    let t = transforms(&[ROT]);
    assert!(ops::image_projective_transform_v3(
        &img(&[4, 5, 1]),
        &t,
        [4, 5],
        0.0,
        Interpolation::Bilinear,
        FillMode::Reflect
    )
    .is_err());
    assert!(ops::image_projective_transform_v3(
        &x,
        &t,
        [0, 5],
        0.0,
        Interpolation::Bilinear,
        FillMode::Reflect
    )
    .is_err());
    assert!(ops::affine_transform(
        &img(&[5, 1]),
        &t,
        Interpolation::Bilinear,
        FillMode::Reflect,
        0.0
    )
    .is_err());
    assert!(FillMode::parse("mirror").is_err());
    assert_eq!(FillMode::parse("REFLECT").unwrap(), FillMode::Reflect);
    assert!(Interpolation::parse("bicubic").is_err());
}

#[test]
fn crops_and_flips() {
    let x = img(&[5, 6, 1]);
    let xv = f32s(&x);
    let c = ops::crop_to_bounding_box(&x, 1, 2, 3, 4).unwrap();
    assert_eq!(c.shape(), &[3, 4, 1]);
    assert_eq!(f32s(&c)[0], xv[6 + 2]);
    assert!(ops::crop_to_bounding_box(&x, 3, 0, 3, 1).is_err());
    // central_crop(0.5) of 5x6: start int((5-2.5)/2)=1, int((6-3)/2)=1 → 3x4.
    let cc = ops::central_crop(&x, 0.5).unwrap();
    assert_eq!(cc.shape(), &[3, 4, 1]);
    assert_eq!(
        f32s(&cc),
        f32s(&ops::crop_to_bounding_box(&x, 1, 1, 3, 4).unwrap())
    );
    assert!(ops::central_crop(&x, 0.0).is_err());
    let lr = f32s(&ops::flip_left_right(&x).unwrap());
    let ud = f32s(&ops::flip_up_down(&x).unwrap());
    for r in 0..5 {
        for col in 0..6 {
            assert_eq!(lr[r * 6 + col], xv[r * 6 + 5 - col]);
            assert_eq!(ud[r * 6 + col], xv[(4 - r) * 6 + col]);
        }
    }
}

#[test]
fn image_kernels_are_thread_count_independent() {
    let x = test_tensor(&[4, 40, 50, 3], 11, -1.0, 1.0);
    let x = ops::cast(&x, DType::F32).unwrap();
    let t = transforms(&[ROT, PROJ, ROT, PROJ]);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let r = ops::resize(&x, [70, 90], ResizeMethod::Bicubic).unwrap();
                let rg = ops::resize_grad(&r, [40, 50], ResizeMethod::Bilinear).unwrap();
                let p = ops::image_projective_transform_v3(
                    &x,
                    &t,
                    [60, 60],
                    0.0,
                    Interpolation::Bilinear,
                    FillMode::Reflect,
                )
                .unwrap();
                let pg = ops::image_projective_transform_grad(
                    &p,
                    &t,
                    [40, 50],
                    Interpolation::Bilinear,
                    FillMode::Reflect,
                )
                .unwrap();
                [r, rg, p, pg].map(|t| {
                    t.to_vec::<f32>()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                })
            })
    };
    assert_eq!(run(1), run(2));
}
