//! Seeded random tensors on the counter-based Philox generator (`kernels::philox`).
//!
//! Stateless functions (`random_uniform`, `random_normal`, ...) are like TensorFlow's
//! `tf.random.stateless_*`: the same `seed` always gives the same values. [`Generator`] is like
//! `tf.random.Generator.from_seed(seed)`: each call consumes a fresh range of Philox counters, so
//! successive calls differ while the whole sequence is reproducible from the seed.
//!
//! Values never depend on the rayon thread count: every element is a function of
//! (seed, counter) only.
//!
//! Creation functions are plain functions, not ops, in eager mode: they have no inputs to
//! differentiate, so nothing is recorded on a tape. While a graph is being built they add a
//! [`RandomFill`] node instead, which a `Session` runs as TF 1's stateful random ops: every run
//! draws afresh, reproducibly from the seed (see `graph::random`); its first run equals the
//! eager draw. `random_shuffle` has an input; like TensorFlow's `RandomShuffle`, it has no
//! gradient (asking for one is an error).

use std::sync::{Arc, Mutex};

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{cast as cast_kernel, tensor_from};
use crate::kernels::philox::{self, Dist, PhiloxStream};
use crate::kernels::Float;
use crate::op::{execute1, no_gradient, GradCtx, Op, TensorSpec};
use crate::storage::{Storage, StorageElement};
use crate::tensor::Tensor;
use crate::with_storage;

/// Which float distribution a fill draws from.
#[derive(Clone, Copy, Debug)]
enum FloatDist {
    Uniform,
    Normal,
    Truncated,
}

fn counters<T: Float>(d: FloatDist, n: usize) -> u64 {
    match d {
        FloatDist::Uniform => Dist::uniform::<T>().counters(n),
        FloatDist::Normal => Dist::normal::<T>().counters(n),
        FloatDist::Truncated => Dist::TruncatedNormal.counters(n),
    }
}

fn fill<T: Float + StorageElement>(
    d: FloatDist,
    shape: &[usize],
    a: f64,
    b: f64,
    seed: u64,
    offset: u64,
) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v = vec![T::zero(); n];
    let (a, b) = (T::from_f64c(a), T::from_f64c(b));
    match d {
        FloatDist::Uniform => philox::fill_uniform(seed, offset, &mut v, a, b),
        FloatDist::Normal => philox::fill_normal(seed, offset, &mut v, a, b),
        FloatDist::Truncated => philox::fill_truncated_normal(seed, offset, &mut v, a, b),
    }
    tensor_from(v, shape)
}

/// Number of counters a float fill of `n` elements of `dtype` consumes (f16/bf16 draw in f32).
fn float_counters(d: FloatDist, dtype: DType, n: usize) -> u64 {
    if dtype == DType::F64 {
        counters::<f64>(d, n)
    } else {
        counters::<f32>(d, n)
    }
}

fn float_tensor(
    name: &str,
    d: FloatDist,
    shape: &[usize],
    a: f64,
    b: f64,
    dtype: DType,
    (seed, offset): (u64, u64),
) -> Result<Tensor> {
    Ok(match dtype {
        DType::F32 => fill::<f32>(d, shape, a, b, seed, offset),
        DType::F64 => fill::<f64>(d, shape, a, b, seed, offset),
        DType::F16 | DType::BF16 => cast_kernel(&fill::<f32>(d, shape, a, b, seed, offset), dtype),
        _ => {
            return Err(Error::dtype(
                name,
                "expects a float dtype (float16, bfloat16, float32, float64)",
                &[dtype],
            ))
        }
    })
}

fn int_tensor(
    shape: &[usize],
    minval: i64,
    maxval: i64,
    dtype: DType,
    seed: u64,
    offset: u64,
) -> Result<Tensor> {
    const NAME: &str = "RandomUniformInt";
    if minval >= maxval {
        return Err(Error::invalid(
            NAME,
            format!("need minval < maxval, got minval={minval}, maxval={maxval}"),
        ));
    }
    let n: usize = shape.iter().product();
    let mut v = vec![0i64; n];
    match dtype {
        DType::I64 => {}
        DType::I32 => {
            if minval < i64::from(i32::MIN) || maxval > i64::from(i32::MAX) + 1 {
                return Err(Error::invalid(
                    NAME,
                    format!("[{minval}, {maxval}) does not fit in int32"),
                ));
            }
        }
        d => return Err(Error::dtype(NAME, "expects int32 or int64", &[d])),
    }
    philox::fill_uniform_int(seed, offset, &mut v, minval, maxval);
    Ok(match dtype {
        // In range by the check above.
        DType::I32 => tensor_from(v.into_iter().map(|x| x as i32).collect(), shape),
        _ => tensor_from(v, shape),
    })
}

/// `tf.random.stateless_uniform`: floats uniform in `[minval, maxval)`. Integer dtypes
/// (int32/int64) forward to [`random_uniform_int`] with `minval`/`maxval` truncated, as
/// `tf.random.uniform` accepts them.
///
/// ```
/// use ferroflow_core::{ops, DType};
/// let a = ops::random_uniform(&[2, 3], -1.0, 1.0, DType::F32, 7)?;
/// let b = ops::random_uniform(&[2, 3], -1.0, 1.0, DType::F32, 7)?;
/// assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
/// assert!(a.to_vec::<f32>()?.iter().all(|&v| (-1.0..1.0).contains(&v)));
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn random_uniform(
    shape: &[usize],
    minval: f64,
    maxval: f64,
    dtype: DType,
    seed: u64,
) -> Result<Tensor> {
    if dtype.is_int() {
        return random_uniform_int(shape, minval as i64, maxval as i64, dtype, seed);
    }
    if crate::graph::building() {
        return RandomFill::float(FloatDist::Uniform, shape, minval, maxval, dtype, seed);
    }
    float_tensor(
        "RandomUniform",
        FloatDist::Uniform,
        shape,
        minval,
        maxval,
        dtype,
        (seed, 0),
    )
}

/// `tf.random.stateless_normal`: `mean + stddev·z`, `z` standard normal (Box–Muller).
///
/// ```
/// use ferroflow_core::{ops, DType};
/// let x = ops::random_normal(&[4], 0.0, 1.0, DType::F64, 1)?;
/// assert_eq!(x.shape(), &[4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn random_normal(
    shape: &[usize],
    mean: f64,
    stddev: f64,
    dtype: DType,
    seed: u64,
) -> Result<Tensor> {
    if crate::graph::building() {
        return RandomFill::float(FloatDist::Normal, shape, mean, stddev, dtype, seed);
    }
    float_tensor(
        "RandomStandardNormal",
        FloatDist::Normal,
        shape,
        mean,
        stddev,
        dtype,
        (seed, 0),
    )
}

/// `tf.random.stateless_truncated_normal`: like [`random_normal`] but draws with `|z| > 2`
/// (beyond two standard deviations) are re-drawn, as TensorFlow does.
///
/// ```
/// use ferroflow_core::{ops, DType};
/// let x = ops::truncated_normal(&[1000], 0.0, 1.0, DType::F32, 3)?;
/// assert!(x.to_vec::<f32>()?.iter().all(|v| v.abs() <= 2.0));
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn truncated_normal(
    shape: &[usize],
    mean: f64,
    stddev: f64,
    dtype: DType,
    seed: u64,
) -> Result<Tensor> {
    if crate::graph::building() {
        return RandomFill::float(FloatDist::Truncated, shape, mean, stddev, dtype, seed);
    }
    float_tensor(
        "TruncatedNormal",
        FloatDist::Truncated,
        shape,
        mean,
        stddev,
        dtype,
        (seed, 0),
    )
}

/// `tf.random.stateless_uniform` with an integer dtype: integers uniform in `[minval, maxval)`
/// (`dtype` int32 or int64; an error unless `minval < maxval`).
///
/// ```
/// use ferroflow_core::{ops, DType};
/// let x = ops::random_uniform_int(&[100], 0, 10, DType::I32, 5)?;
/// assert!(x.to_vec::<i32>()?.iter().all(|v| (0..10).contains(v)));
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn random_uniform_int(
    shape: &[usize],
    minval: i64,
    maxval: i64,
    dtype: DType,
    seed: u64,
) -> Result<Tensor> {
    if crate::graph::building() {
        return execute1(
            RandomFill {
                dist: None,
                shape: shape.to_vec(),
                a: minval as f64,
                b: maxval as f64,
                ints: (minval, maxval),
                dtype,
                seed,
            },
            &[],
        );
    }
    int_tensor(shape, minval, maxval, dtype, seed, 0)
}

/// The node a random creation function adds in graph mode (`RandomUniform`,
/// `RandomStandardNormal`, `TruncatedNormal`, `RandomUniformInt`): no inputs, a fully known
/// shape, and a seed a `Session` advances on every run (see `graph::random`).
#[derive(Clone, Debug)]
pub struct RandomFill {
    /// The float distribution; `None` for integers uniform in `ints`.
    dist: Option<FloatDist>,
    shape: Vec<usize>,
    a: f64,
    b: f64,
    ints: (i64, i64),
    dtype: DType,
    seed: u64,
}

impl RandomFill {
    fn float(
        dist: FloatDist,
        shape: &[usize],
        a: f64,
        b: f64,
        dtype: DType,
        seed: u64,
    ) -> Result<Tensor> {
        execute1(
            RandomFill {
                dist: Some(dist),
                shape: shape.to_vec(),
                a,
                b,
                ints: (0, 0),
                dtype,
                seed,
            },
            &[],
        )
    }
}

impl Op for RandomFill {
    fn name(&self) -> &'static str {
        match self.dist {
            Some(FloatDist::Uniform) => "RandomUniform",
            Some(FloatDist::Normal) => "RandomStandardNormal",
            Some(FloatDist::Truncated) => "TruncatedNormal",
            None => "RandomUniformInt",
        }
    }
    fn infer(&self, _inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        match self.dist {
            Some(_) if !self.dtype.is_float() => {
                return Err(Error::dtype(
                    self.name(),
                    "expects a float dtype (float16, bfloat16, float32, float64)",
                    &[self.dtype],
                ))
            }
            None if !matches!(self.dtype, DType::I32 | DType::I64) => {
                return Err(Error::dtype(
                    self.name(),
                    "expects int32 or int64",
                    &[self.dtype],
                ))
            }
            None if self.ints.0 >= self.ints.1 => {
                return Err(Error::invalid(
                    self.name(),
                    format!(
                        "need minval < maxval, got minval={}, maxval={}",
                        self.ints.0, self.ints.1
                    ),
                ))
            }
            _ => {}
        }
        Ok(vec![TensorSpec::new(self.dtype, &self.shape)])
    }
    fn compute(&self, _inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let t = match self.dist {
            Some(d) => float_tensor(
                self.name(),
                d,
                &self.shape,
                self.a,
                self.b,
                self.dtype,
                (self.seed, 0),
            )?,
            None => int_tensor(
                &self.shape,
                self.ints.0,
                self.ints.1,
                self.dtype,
                self.seed,
                0,
            )?,
        };
        Ok(vec![t])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![])
    }
    fn random_seed(&self) -> Option<u64> {
        Some(self.seed)
    }
    fn with_random_seed(&self, seed: u64) -> Option<Arc<dyn Op>> {
        Some(Arc::new(RandomFill {
            seed,
            ..self.clone()
        }))
    }
}

/// `tf.random.shuffle`'s op: permutes the slices along axis 0 (no gradient, as TensorFlow's
/// `RandomShuffle`).
#[derive(Clone, Debug)]
pub struct RandomShuffle {
    /// The Philox seed.
    pub seed: u64,
    /// First Philox counter to use.
    pub offset: u64,
}

fn permute_rows<T: StorageElement>(v: &[T], perm: &[usize], row: usize) -> Storage {
    let mut out = Vec::with_capacity(v.len());
    for &p in perm {
        out.extend_from_slice(&v[p * row..(p + 1) * row]);
    }
    T::into_storage(out)
}

impl Op for RandomShuffle {
    fn is_stateful(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "RandomShuffle"
    }
    fn infer(&self, inputs: &[TensorSpec]) -> Result<Vec<TensorSpec>> {
        Ok(vec![inputs[0].clone()])
    }
    fn compute(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let x = &inputs[0];
        if x.rank() == 0 {
            return Ok(vec![x.with_new_id()]);
        }
        let n = x.shape()[0];
        let row = x.shape()[1..].iter().product::<usize>();
        let perm = philox::shuffle_indices(self.seed, self.offset, n);
        let xc = x.contiguous();
        let s = with_storage!(&**xc.storage(), v => permute_rows(v, &perm, row));
        Ok(vec![Tensor::from_storage(s, x.shape())?])
    }
    fn grad(&self, _ctx: &GradCtx<'_>) -> Result<Vec<Option<Tensor>>> {
        no_gradient(self)
    }
    fn random_seed(&self) -> Option<u64> {
        Some(self.seed)
    }
    fn with_random_seed(&self, seed: u64) -> Option<Arc<dyn Op>> {
        Some(Arc::new(RandomShuffle { seed, ..*self }))
    }
}

/// `tf.random.shuffle(x, seed)`: `x` with its slices along axis 0 in a random order (the
/// permutation depends only on `seed` and the length of axis 0). Any dtype; a scalar is
/// returned unchanged. Not differentiable, as in TensorFlow.
///
/// ```
/// use ferroflow_core::{ops, Tensor};
/// let x = Tensor::from_vec((0..5).collect::<Vec<i32>>(), &[5])?;
/// let mut y = ops::random_shuffle(&x, 9)?.to_vec::<i32>()?;
/// y.sort();
/// assert_eq!(y, vec![0, 1, 2, 3, 4]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn random_shuffle(x: &Tensor, seed: u64) -> Result<Tensor> {
    execute1(RandomShuffle { seed, offset: 0 }, &[x.clone()])
}

/// A stateful random generator, like `tf.random.Generator.from_seed(seed)`: every call takes
/// the next unused range of Philox counters, so successive calls give different values and a
/// generator made from the same seed replays the same sequence. Methods take `&self` (the
/// counter sits behind a mutex), so a generator can be shared between threads; calls are then
/// ordered by whoever takes the lock first.
///
/// ```
/// use ferroflow_core::{DType, Generator};
/// let g = Generator::from_seed(42);
/// let a = g.normal(&[3], 0.0, 1.0, DType::F32)?;
/// let b = g.normal(&[3], 0.0, 1.0, DType::F32)?;
/// assert_ne!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
/// let g2 = Generator::from_seed(42);
/// assert_eq!(g2.normal(&[3], 0.0, 1.0, DType::F32)?.to_vec::<f32>()?, a.to_vec::<f32>()?);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Generator {
    stream: Mutex<PhiloxStream>,
}

impl Generator {
    /// A generator whose sequence is determined by `seed`.
    pub fn from_seed(seed: u64) -> Generator {
        Generator {
            stream: Mutex::new(PhiloxStream::new(seed, 0)),
        }
    }

    /// The seed this generator was made from.
    pub fn seed(&self) -> u64 {
        self.lock().seed()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PhiloxStream> {
        // The stream holds no invariant a panic could break.
        self.stream.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `n` counters; returns (seed, offset).
    fn reserve(&self, n: u64) -> (u64, u64) {
        let mut s = self.lock();
        let off = s.reserve(n);
        (s.seed(), off)
    }

    fn float(
        &self,
        name: &str,
        d: FloatDist,
        shape: &[usize],
        a: f64,
        b: f64,
        dtype: DType,
    ) -> Result<Tensor> {
        if !dtype.is_float() {
            return Err(Error::dtype(name, "expects a float dtype", &[dtype]));
        }
        let n: usize = shape.iter().product();
        let (seed, off) = self.reserve(float_counters(d, dtype, n));
        float_tensor(name, d, shape, a, b, dtype, (seed, off))
    }

    /// Floats uniform in `[minval, maxval)` (`Generator.uniform`).
    pub fn uniform(
        &self,
        shape: &[usize],
        minval: f64,
        maxval: f64,
        dtype: DType,
    ) -> Result<Tensor> {
        if dtype.is_int() {
            return self.uniform_int(shape, minval as i64, maxval as i64, dtype);
        }
        self.float(
            "RandomUniform",
            FloatDist::Uniform,
            shape,
            minval,
            maxval,
            dtype,
        )
    }

    /// Normals `mean + stddev·z` (`Generator.normal`).
    pub fn normal(&self, shape: &[usize], mean: f64, stddev: f64, dtype: DType) -> Result<Tensor> {
        self.float(
            "RandomStandardNormal",
            FloatDist::Normal,
            shape,
            mean,
            stddev,
            dtype,
        )
    }

    /// Normals truncated to two standard deviations (`Generator.truncated_normal`).
    pub fn truncated_normal(
        &self,
        shape: &[usize],
        mean: f64,
        stddev: f64,
        dtype: DType,
    ) -> Result<Tensor> {
        self.float(
            "TruncatedNormal",
            FloatDist::Truncated,
            shape,
            mean,
            stddev,
            dtype,
        )
    }

    /// Integers uniform in `[minval, maxval)`, int32 or int64.
    pub fn uniform_int(
        &self,
        shape: &[usize],
        minval: i64,
        maxval: i64,
        dtype: DType,
    ) -> Result<Tensor> {
        if minval >= maxval || !matches!(dtype, DType::I32 | DType::I64) {
            // Let the shared checks produce the error without consuming counters.
            return int_tensor(&[0], minval, maxval, dtype, 0, 0);
        }
        let n: usize = shape.iter().product();
        let (seed, off) = self.reserve(Dist::UniformInt.counters(n));
        int_tensor(shape, minval, maxval, dtype, seed, off)
    }

    /// `x` shuffled along axis 0 (like `tf.random.shuffle` drawing from this generator).
    /// Not differentiable.
    pub fn shuffle(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.shape().first().copied().unwrap_or(0);
        let (seed, offset) = self.reserve(Dist::Shuffle.counters(n));
        execute1(RandomShuffle { seed, offset }, &[x.clone()])
    }
}

// ---- The global seed (`tf.random.set_seed`) ----

thread_local! {
    /// The global seed and how many op seeds were derived from it since it was set.
    static GLOBAL_SEED: std::cell::Cell<Option<(u64, u64)>> = const { std::cell::Cell::new(None) };
}

/// `tf.random.set_seed`: sets (or with `None` clears) the global seed. Random operations given
/// no seed of their own then take one from [`next_op_seed`], so a program that sets the global
/// seed gets the same random numbers on every run (TF's rule: global seed set and op seed
/// `None` → a deterministic op seed from the global seed and a counter that setting the seed
/// resets). Keras's `set_random_seed` sets it. State is per thread, as the Keras session is.
pub fn set_global_seed(seed: Option<u64>) {
    GLOBAL_SEED.with(|g| g.set(seed.map(|s| (s, 0))));
}

/// The global seed, if one is set.
pub fn global_seed() -> Option<u64> {
    GLOBAL_SEED.with(|g| g.get().map(|(s, _)| s))
}

/// TF's `get_seed(None)`: with a global seed set, the next op seed derived from it (a different
/// one per call, the same sequence after each [`set_global_seed`]); `None` without a global seed
/// (the caller then draws a seed from the operating system, as TF does).
pub fn next_op_seed() -> Option<u64> {
    GLOBAL_SEED.with(|g| {
        let (seed, count) = g.get()?;
        g.set(Some((seed, count + 1)));
        // splitmix64 of the seed and the counter.
        let mut z = (seed ^ 0xD1B5_4A32_D192_ED03u64.wrapping_mul(count + 1))
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Some(z ^ (z >> 31))
    })
}
