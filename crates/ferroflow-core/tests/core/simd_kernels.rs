//! The run-time dispatched SIMD kernels (`kernels::simd`, `kernels::optim`, the elementwise
//! maps): every level the CPU supports against the plain scalar reference written here, on
//! random odd sizes, and 1 vs 2 threads bit for bit.

use ferroflow_core::kernels::optim::{adam, adam_at, AdamScalars};
use ferroflow_core::kernels::simd::{self, Level};
use ferroflow_core::{ops, Tensor};

/// A small deterministic generator (xorshift), values in [lo, hi).
fn rand_vec(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

const SCALARS: AdamScalars = AdamScalars {
    alpha: 0.001 * 0.044_710_2 / 0.1,
    beta_1: 0.9,
    beta_2: 0.999,
    epsilon: 1e-7,
};

/// Keras's Adam step written out in f32, element by element.
fn adam_reference(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: AdamScalars) {
    let alpha = s.alpha as f32;
    let eps = s.epsilon as f32;
    let c1 = (1.0 - s.beta_1) as f32;
    let c2 = (1.0 - s.beta_2) as f32;
    for i in 0..w.len() {
        m[i] += (g[i] - m[i]) * c1;
        v[i] += (g[i] * g[i] - v[i]) * c2;
        w[i] -= m[i] * alpha / (v[i].sqrt() + eps);
    }
}

#[test]
fn simd_levels_include_portable_and_detected() {
    let levels = simd::available();
    assert_eq!(levels[0], Level::Portable);
    assert_eq!(*levels.last().unwrap(), simd::detected());
}

#[test]
fn adam_matches_scalar_reference_at_every_level_and_odd_size() {
    for (i, &n) in [1usize, 7, 15, 16, 17, 33, 1000, 4097, 70_001]
        .iter()
        .enumerate()
    {
        let seed = 10 * i as u64;
        let w0 = f32s(&rand_vec(n, seed + 1, -1.0, 1.0));
        let g = f32s(&rand_vec(n, seed + 2, -0.5, 0.5));
        let m0 = f32s(&rand_vec(n, seed + 3, -0.1, 0.1));
        let v0 = f32s(&rand_vec(n, seed + 4, 0.0, 0.01));
        let (mut wr, mut mr, mut vr) = (w0.clone(), m0.clone(), v0.clone());
        adam_reference(&mut wr, &g, &mut mr, &mut vr, SCALARS);
        for level in simd::available() {
            let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
            assert!(adam_at(level, &mut w, &g, &mut m, &mut v, SCALARS));
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&w), bits(&wr), "w, n={n}, {level:?}");
            assert_eq!(bits(&m), bits(&mr), "m, n={n}, {level:?}");
            assert_eq!(bits(&v), bits(&vr), "v, n={n}, {level:?}");
        }
    }
}

#[test]
fn adam_f64_and_refusals() {
    let mut w = vec![1.0f64, -2.0, 3.0];
    let g = vec![0.5f64, 0.25, -1.0];
    let (mut m, mut v) = (vec![0.0f64; 3], vec![0.0f64; 3]);
    assert!(adam(&mut w, &g, &mut m, &mut v, SCALARS));
    for i in 0..3 {
        let mi = g[i] * (1.0 - 0.9);
        let vi = g[i] * g[i] * (1.0 - 0.999);
        assert_eq!(m[i], mi);
        assert_eq!(v[i], vi);
    }
    // Other dtypes and mismatched lengths are refused, untouched.
    let mut wi = vec![1i32, 2];
    let (gi, mut mi, mut vi) = (vec![1i32, 2], vec![0i32, 0], vec![0i32, 0]);
    assert!(!adam(&mut wi, &gi, &mut mi, &mut vi, SCALARS));
    let mut w2 = vec![1.0f32, 2.0];
    assert!(!adam(
        &mut w2,
        &[1.0f32],
        &mut [0.0f32, 0.0],
        &mut [0.0f32, 0.0],
        SCALARS
    ));
    assert_eq!(w2, vec![1.0, 2.0]);
}

#[test]
fn adam_same_bits_on_one_and_two_threads() {
    let n = 200_003; // above the parallel threshold, not a multiple of any chunk
    let w0 = f32s(&rand_vec(n, 91, -1.0, 1.0));
    let g = f32s(&rand_vec(n, 92, -1.0, 1.0));
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let (mut w, mut m, mut v) = (w0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
                for _ in 0..3 {
                    assert!(adam(&mut w, &g, &mut m, &mut v, SCALARS));
                }
                w.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            })
    };
    assert_eq!(run(1), run(2));
}

/// The dispatched elementwise ops against loops written here, on odd sizes (and above the
/// parallel threshold), with broadcasting.
#[test]
fn elementwise_ops_match_scalar_loops_on_odd_sizes() {
    for (i, &n) in [1usize, 3, 17, 31, 1001, 40_003].iter().enumerate() {
        let a = rand_vec(n, 100 + i as u64, -3.0, 3.0);
        let b = rand_vec(n, 200 + i as u64, 0.5, 2.0);
        let (a32, b32) = (f32s(&a), f32s(&b));
        let ta = Tensor::from_vec(a32.clone(), &[n]).unwrap();
        let tb = Tensor::from_vec(b32.clone(), &[n]).unwrap();
        let got = |t: Tensor| t.to_vec::<f32>().unwrap();
        let want: Vec<f32> = a32.iter().zip(&b32).map(|(x, y)| x * y).collect();
        assert_eq!(got(ops::mul(&ta, &tb).unwrap()), want, "mul n={n}");
        let want: Vec<f32> = a32.iter().zip(&b32).map(|(x, y)| x / y).collect();
        assert_eq!(got(ops::div(&ta, &tb).unwrap()), want, "div n={n}");
        let want: Vec<f32> = a32.iter().map(|&x| if x > 0.0 { x } else { 0.0 }).collect();
        assert_eq!(got(ops::relu(&ta).unwrap()), want, "relu n={n}");
        let want: Vec<f32> = b32.iter().map(|x| x.sqrt()).collect();
        assert_eq!(got(ops::sqrt(&tb).unwrap()), want, "sqrt n={n}");
        // Scalar broadcast and a row broadcast over [n, 3].
        let s = Tensor::scalar(1.5f32);
        let want: Vec<f32> = a32.iter().map(|x| x - 1.5).collect();
        assert_eq!(got(ops::sub(&ta, &s).unwrap()), want, "sub scalar n={n}");
        let m = Tensor::from_vec(f32s(&rand_vec(3 * n, 7, -1.0, 1.0)), &[n, 3]).unwrap();
        let row = Tensor::from_vec(vec![0.5f32, -2.0, 3.0], &[3]).unwrap();
        let mv = m.to_vec::<f32>().unwrap();
        let want: Vec<f32> = mv
            .iter()
            .enumerate()
            .map(|(k, x)| x + [0.5f32, -2.0, 3.0][k % 3])
            .collect();
        assert_eq!(got(ops::add(&m, &row).unwrap()), want, "add row n={n}");
    }
}

#[test]
fn elementwise_same_bits_on_one_and_two_threads() {
    let n = 100_003;
    let a = Tensor::from_vec(f32s(&rand_vec(n, 5, -2.0, 2.0)), &[n]).unwrap();
    let b = Tensor::from_vec(f32s(&rand_vec(n, 6, 0.5, 2.0)), &[n]).unwrap();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let y = ops::div(&ops::mul(&a, &b).unwrap(), &ops::exp(&b).unwrap()).unwrap();
                y.to_vec::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            })
    };
    assert_eq!(run(1), run(2));
}

/// `simd::run_at` gives the same results at every level for a loop with division and sqrt.
#[test]
fn run_at_every_level_is_bit_identical() {
    let x = f32s(&rand_vec(1027, 9, 0.1, 10.0));
    let outs: Vec<Vec<u32>> = simd::available()
        .into_iter()
        .map(|l| {
            simd::run_at(l, || {
                x.iter()
                    .map(|&v| (v.sqrt() / (v + 1.0) - v * 0.5).to_bits())
                    .collect()
            })
        })
        .collect();
    for o in &outs[1..] {
        assert_eq!(o, &outs[0]);
    }
}
