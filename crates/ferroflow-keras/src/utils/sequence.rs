//! `keras.utils.pad_sequences`.

use ferroflow_core::{DType, Error, Result, Tensor};

/// A value `pad_sequences` accepts in a sequence (token ids or floats).
pub trait SequenceValue: Copy {
    /// The value as `f64`.
    fn to_f64(self) -> f64;
}

macro_rules! seq_value {
    ($($t:ty),*) => {$(
        impl SequenceValue for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
seq_value!(i32, i64, u8, u16, u32, u64, usize, f32, f64);

/// `keras.utils.pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre",
/// truncating="pre", value=0.0)`: a list of sequences → a `[len(sequences), maxlen]` tensor,
/// exactly as Keras: `maxlen = None` takes the longest sequence; sequences longer than `maxlen`
/// lose values at the start (`truncating="pre"`) or the end (`"post"`); shorter ones are padded
/// with `value` at the start (`padding="pre"`) or the end (`"post"`). Values (and `value`) are
/// converted to `dtype` (int dtypes truncate toward zero, as numpy).
///
/// ```
/// use ferroflow_keras::utils::pad_sequences;
/// use ferroflow_core::DType;
/// let x = pad_sequences(&[vec![1, 2, 3], vec![4, 5], vec![6]], Some(2), DType::I32, "pre", "pre", 0.0)?;
/// assert_eq!(x.to_vec::<i32>()?, vec![2, 3, 4, 5, 0, 6]);
/// # Ok::<(), ferroflow_core::Error>(())
/// ```
pub fn pad_sequences<S, T>(
    sequences: &[S],
    maxlen: Option<usize>,
    dtype: DType,
    padding: &str,
    truncating: &str,
    value: f64,
) -> Result<Tensor>
where
    S: AsRef<[T]>,
    T: SequenceValue,
{
    let op = "pad_sequences";
    if padding != "pre" && padding != "post" {
        return Err(Error::invalid(
            op,
            format!("padding type {padding:?} not understood (use \"pre\" or \"post\")"),
        ));
    }
    if truncating != "pre" && truncating != "post" {
        return Err(Error::invalid(
            op,
            format!("truncating type {truncating:?} not understood (use \"pre\" or \"post\")"),
        ));
    }
    if dtype == DType::Bool {
        return Err(Error::invalid(op, "dtype bool is not supported"));
    }
    let n = sequences.len();
    let maxlen = maxlen.unwrap_or_else(|| {
        sequences
            .iter()
            .map(|s| s.as_ref().len())
            .max()
            .unwrap_or(0)
    });
    let mut out = vec![value; n * maxlen];
    for (i, s) in sequences.iter().enumerate() {
        let s = s.as_ref();
        if s.is_empty() {
            continue;
        }
        let trunc = if s.len() <= maxlen {
            s
        } else if truncating == "pre" {
            &s[s.len() - maxlen..]
        } else {
            &s[..maxlen]
        };
        let row = &mut out[i * maxlen..(i + 1) * maxlen];
        let start = if padding == "post" {
            0
        } else {
            maxlen - trunc.len()
        };
        for (d, v) in row[start..start + trunc.len()].iter_mut().zip(trunc) {
            *d = v.to_f64();
        }
    }
    let out: Vec<f64> = if dtype.is_int() || dtype == DType::U8 {
        out.iter().map(|v| v.trunc()).collect()
    } else {
        out
    };
    Tensor::from_f64_slice(dtype, &out, &[n, maxlen])
}
