//! NumPy-style array printing, as `tf.Tensor.__str__` shows it:
//! `tf.Tensor(<numpy str>, shape=(2, 2), dtype=float32)`. This module renders the `<numpy str>`
//! part ([`format_array`]) and the shape part ([`format_shape`]); the caller adds the wrapper.
//!
//! The rules are NumPy's `array_str` (numpy 1.14+ / 2.x) with the default print options
//! (`precision=8`, `threshold=1000`, `edgeitems=3`, `linewidth=75`, `floatmode='maxprec'`,
//! `suppress=False`, `sign='-'`):
//!
//! * Floats print the shortest digits that round-trip *in their own type* (so `0.1f32` prints
//!   `0.1`), cut to `precision` fractional digits (rounded from the exact value, ties to even),
//!   with trailing zeros trimmed but the point kept (`1.`, `0.5`). All elements share one width:
//!   the integer parts are right-aligned and the fractional parts left-aligned, so decimal points
//!   line up (`[1.5 2.  3. ]`).
//! * Scientific notation (`[1.e-05 1.e+00]`) is used when, over the non-zero finite elements,
//!   `max >= 1e8`, `min < 1e-4` or `max / min > 1e3` (compared in the element type); mantissas
//!   are then zero-padded to a common number of digits and exponents to a common width.
//! * `nan`, `inf`, `-inf` are right-aligned to the common width.
//! * Integers are right-aligned to a common width; booleans print as ` True` / `False`.
//! * Arrays with more than `threshold` elements are summarised: every axis longer than
//!   `2 * edgeitems` shows its first and last `edgeitems` entries around `...`; widths are
//!   computed from the shown elements only.
//! * Rows longer than `linewidth` wrap, continuation lines indented to the bracket depth.
//! * A 0-d array prints like NumPy's scalar `str` (`3.0`, `1e+20`, `3`, `True`).
//!
//! * `bfloat16` is not a NumPy float: TensorFlow's `ml_dtypes` prints each element with C++'s
//!   `%g` (6 significant digits) and NumPy joins them unpadded (`[1 0.100098 -2.5]`).
//!
//! Digits come from a port of NumPy's Dragon4 (unique mode with its `precision` / `min_digits`
//! cut-offs), so they match NumPy digit for digit, including `float16`.
//!
//! Not covered: complex, string and datetime dtypes, user `formatter`s, `sign`/`floatmode`/
//! `suppress` options other than the defaults, and the legacy `1.13` mode.

use half::{bf16, f16};

/// One element to print, carrying its element type (the type decides the shortest digits:
/// `F32(0.1)` prints `0.1`, while `F64(0.1f32 as f64)` prints `0.10000000149011612`-derived
/// digits).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FmtValue {
    /// A `float16` element.
    F16(f16),
    /// A `bfloat16` element.
    BF16(bf16),
    /// A `float32` element.
    F32(f32),
    /// A `float64` element.
    F64(f64),
    /// A signed integer element (any signed width).
    Int(i64),
    /// An unsigned integer element (any unsigned width).
    UInt(u64),
    /// A boolean element.
    Bool(bool),
}

macro_rules! fmt_from {
    ($($t:ty => $v:ident $(as $w:ty)?),* $(,)?) => {$(
        impl From<$t> for FmtValue {
            /// Wraps the element with its type.
            fn from(x: $t) -> Self {
                FmtValue::$v(x $(as $w)?)
            }
        }
    )*};
}

fmt_from!(
    f16 => F16,
    bf16 => BF16,
    f32 => F32,
    f64 => F64,
    i8 => Int as i64,
    i16 => Int as i64,
    i32 => Int as i64,
    i64 => Int,
    u8 => UInt as u64,
    u16 => UInt as u64,
    u32 => UInt as u64,
    u64 => UInt,
    bool => Bool,
);

/// NumPy's print options that this module honours (`np.set_printoptions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrintOptions {
    /// Maximum fractional digits of a float (of the mantissa in scientific mode). Default 8.
    pub precision: usize,
    /// Arrays with more elements than this are summarised. Default 1000.
    pub threshold: usize,
    /// Items shown at each end of a summarised axis. Default 3.
    pub edgeitems: usize,
    /// Maximum characters per line before a row wraps. Default 75.
    pub linewidth: usize,
    /// NumPy >= 2.3 switches to scientific notation from `max >= 10^min(8, digits)` where
    /// `digits` is the type's decimal precision (`float16` 3, `bfloat16` 2, `float32` 6,
    /// `float64` 15) instead of from `max >= 1e8`. Default `false`: the numpy 1.x – 2.2 rule that
    /// TensorFlow releases pin (numpy 2.3+ with `legacy='2.2'` prints the same).
    pub dtype_aware_exp_cutoff: bool,
}

impl Default for PrintOptions {
    fn default() -> Self {
        PrintOptions {
            precision: 8,
            threshold: 1000,
            edgeitems: 3,
            linewidth: 75,
            dtype_aware_exp_cutoff: false,
        }
    }
}

/// The Python/TensorFlow shape string: `()`, `(3,)`, `(2, 2)`.
pub fn format_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// NumPy's `str()` of an array of `shape` whose row-major contiguous elements are `values`,
/// with the default [`PrintOptions`].
///
/// # Panics
/// If `values` is shorter than the product of `shape` (1 for a scalar).
pub fn format_array(shape: &[usize], values: &[FmtValue]) -> String {
    format_array_with(shape, &|i| values[i], &PrintOptions::default())
}

/// [`format_array`] over a slice of any element type convertible to [`FmtValue`]
/// (`f32`, `f64`, `f16`, `bf16`, integers, `bool`).
pub fn format_values<V: Copy + Into<FmtValue>>(shape: &[usize], values: &[V]) -> String {
    format_array_with(shape, &|i| values[i].into(), &PrintOptions::default())
}

/// NumPy's `str()` of an array of `shape`, reading row-major element `i` through `get`, which is
/// only called for the elements that are shown (so a summarised huge tensor costs little).
pub fn format_array_with(
    shape: &[usize],
    get: &dyn Fn(usize) -> FmtValue,
    opts: &PrintOptions,
) -> String {
    if shape.is_empty() {
        return format_scalar_with(get(0), opts);
    }
    let size: usize = shape.iter().product();
    if size == 0 {
        return "[]".to_string();
    }
    let summarize = size > opts.threshold;
    let mut strides = vec![1usize; shape.len()];
    for a in (0..shape.len() - 1).rev() {
        strides[a] = strides[a + 1] * shape[a + 1];
    }
    let mut shown = Vec::new();
    collect_shown(shape, &strides, 0, 0, summarize, opts.edgeitems, &mut shown);
    let vals: Vec<FmtValue> = shown.iter().map(|&i| get(i)).collect();
    let fmt = Formatter::new(&vals, opts);
    let mut words = vals.iter().map(|&v| fmt.format(v));
    render(
        shape,
        0,
        " ",
        opts.linewidth,
        summarize,
        opts.edgeitems,
        &mut words,
    )
}

/// NumPy's `str()` of a scalar (what a 0-d array prints), with the default [`PrintOptions`]:
/// floats use the shortest round-trip digits with no precision cut — positional with at least
/// one fractional digit (`3.0`, `0.1`) when `1e-4 <= |x| < 1e16` or `x == 0`, else scientific
/// without trailing zeros (`1e+20`, `1.5e-05`); `bfloat16` as `ml_dtypes` prints it (`%g`:
/// `3`, `0.100098`); integers plainly; booleans `True` / `False`.
pub fn format_scalar(v: FmtValue) -> String {
    format_scalar_with(v, &PrintOptions::default())
}

/// [`format_scalar`] under `opts` (only [`PrintOptions::dtype_aware_exp_cutoff`] matters: with
/// it, scientific notation starts at `1e3` for `float16` and `1e6` for `float32`, as in
/// NumPy 2.3+).
pub fn format_scalar_with(v: FmtValue, opts: &PrintOptions) -> String {
    match v {
        FmtValue::Int(x) => x.to_string(),
        FmtValue::UInt(x) => x.to_string(),
        FmtValue::Bool(b) => if b { "True" } else { "False" }.to_string(),
        FmtValue::BF16(x) => bf16_repr(x),
        FmtValue::F16(x) => scalar_float(Fl::H(x), opts),
        FmtValue::F32(x) => scalar_float(Fl::S(x), opts),
        FmtValue::F64(x) => scalar_float(Fl::D(x), opts),
    }
}

fn scalar_float(x: Fl, opts: &PrintOptions) -> String {
    if let Some(s) = non_finite(x.f64()) {
        return s.to_string();
    }
    let d = x.shortest();
    let a = x.f64().abs();
    let max_positional = if opts.dtype_aware_exp_cutoff {
        x.scalar_cutoff()
    } else {
        1e16
    };
    if a == 0.0 || (1e-4..max_positional).contains(&a) {
        let (ip, fp) = d.positional_parts();
        format!("{ip}.{}", if fp.is_empty() { "0" } else { &fp })
    } else {
        let (ip, fp, e) = d.scientific_parts();
        let dot = if fp.is_empty() { "" } else { "." };
        format!("{ip}{dot}{fp}e{}", exp_str(e, 2))
    }
}

/// `nan`, `inf`, `-inf` for non-finite values.
fn non_finite(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("nan")
    } else if x.is_infinite() {
        Some(if x < 0.0 { "-inf" } else { "inf" })
    } else {
        None
    }
}

/// An exponent as NumPy writes it: sign, then at least `min_digits` digits (`+00`, `-05`).
fn exp_str(e: i32, min_digits: usize) -> String {
    let sign = if e < 0 { '-' } else { '+' };
    format!("{sign}{:0w$}", e.unsigned_abs(), w = min_digits)
}

/// Flat indices of the shown elements in print order (every axis longer than `2 * edge` is cut
/// to its first and last `edge` entries when summarising).
fn collect_shown(
    shape: &[usize],
    strides: &[usize],
    axis: usize,
    base: usize,
    summarize: bool,
    edge: usize,
    out: &mut Vec<usize>,
) {
    let n = shape[axis];
    let idx: Vec<usize> = if summarize && 2 * edge < n {
        (0..edge).chain(n - edge..n).collect()
    } else {
        (0..n).collect()
    };
    for i in idx {
        let b = base + i * strides[axis];
        if axis + 1 == shape.len() {
            out.push(b);
        } else {
            collect_shown(shape, strides, axis + 1, b, summarize, edge, out);
        }
    }
}

/// NumPy's `_extendLine`: appends `word` to `line`, first flushing `line` into `s` when the word
/// would pass `width` (unless the line holds only its indent, where wrapping cannot help).
fn extend_line(s: &mut String, line: &mut String, word: &str, width: usize, indent: &str) {
    let needs_wrap = line.len() + word.len() > width && line.len() > indent.len();
    if needs_wrap {
        s.push_str(line.trim_end());
        s.push('\n');
        line.clear();
        line.push_str(indent);
    }
    line.push_str(word);
}

/// NumPy's `_formatArray` recursion (separator `' '`), consuming formatted elements in order.
fn render(
    shape: &[usize],
    axis: usize,
    indent: &str,
    width: usize,
    summarize: bool,
    edge: usize,
    words: &mut dyn Iterator<Item = String>,
) -> String {
    let axes_left = shape.len() - axis;
    let next_indent = format!("{indent} ");
    let next_width = width.saturating_sub(1);
    let n = shape[axis];
    let show_summary = summarize && 2 * edge < n;
    let (leading, trailing) = if show_summary { (edge, edge) } else { (0, n) };
    let mut s = String::new();
    if axes_left == 1 {
        let elem_width = width.saturating_sub(1);
        let mut line = indent.to_string();
        let mut next = || words.next().expect("format: element count mismatch");
        for _ in 0..leading {
            extend_line(&mut s, &mut line, &next(), elem_width, indent);
            line.push(' ');
        }
        if show_summary {
            extend_line(&mut s, &mut line, "...", elem_width, indent);
            line.push(' ');
        }
        for _ in 1..trailing {
            extend_line(&mut s, &mut line, &next(), elem_width, indent);
            line.push(' ');
        }
        extend_line(&mut s, &mut line, &next(), elem_width, indent);
        s.push_str(&line);
    } else {
        let line_sep = "\n".repeat(axes_left - 1);
        let block = |s: &mut String, words: &mut dyn Iterator<Item = String>| {
            let nested = render(
                shape,
                axis + 1,
                &next_indent,
                next_width,
                summarize,
                edge,
                words,
            );
            s.push_str(indent);
            s.push_str(&nested);
        };
        for _ in 0..leading {
            block(&mut s, words);
            s.push_str(&line_sep);
        }
        if show_summary {
            s.push_str(indent);
            s.push_str("...");
            s.push_str(&line_sep);
        }
        for _ in 1..trailing {
            block(&mut s, words);
            s.push_str(&line_sep);
        }
        block(&mut s, words);
    }
    format!("[{}]", &s[indent.len()..])
}

/// A float NumPy formats with Dragon4 (`bfloat16` goes through [`bf16_repr`] instead).
#[derive(Clone, Copy, Debug)]
enum Fl {
    H(f16),
    S(f32),
    D(f64),
}

impl Fl {
    fn from_value(v: FmtValue) -> Option<Fl> {
        match v {
            FmtValue::F16(x) => Some(Fl::H(x)),
            FmtValue::F32(x) => Some(Fl::S(x)),
            FmtValue::F64(x) => Some(Fl::D(x)),
            _ => None,
        }
    }

    /// The exact value as `f64`.
    fn f64(self) -> f64 {
        match self {
            Fl::H(x) => x.to_f64(),
            Fl::S(x) => f64::from(x),
            Fl::D(x) => x,
        }
    }

    /// Rounds `x` to this value's type (so comparisons happen in the element type, as NumPy's).
    fn round(self, x: f64) -> f64 {
        match self {
            Fl::H(_) => f16::from_f64(x).to_f64(),
            Fl::S(_) => f64::from(x as f32),
            Fl::D(_) => x,
        }
    }

    /// NumPy 2.3+'s array cutoff for scientific notation, `10^min(8, decimal digits of type)`.
    fn exp_cutoff(self) -> f64 {
        match self {
            Fl::H(_) => 1e3,
            Fl::S(_) => 1e6,
            Fl::D(_) => 1e8,
        }
    }

    /// NumPy 2.3+'s scalar cutoff for scientific notation.
    fn scalar_cutoff(self) -> f64 {
        match self {
            Fl::H(_) => 1e3,
            Fl::S(_) => 1e6,
            Fl::D(_) => 1e16,
        }
    }

    /// `(negative, mantissa, binary exponent, index of the mantissa's top bit, unequal margins)`
    /// with `|x| = mantissa * 2^exponent`, as NumPy's Dragon4 front ends compute it.
    fn decompose(self) -> (bool, u64, i32, u32, bool) {
        let (bits, frac_bits, exp_bits): (u64, u32, u32) = match self {
            Fl::H(x) => (u64::from(x.to_bits()), 10, 5),
            Fl::S(x) => (u64::from(x.to_bits()), 23, 8),
            Fl::D(x) => (x.to_bits(), 52, 11),
        };
        let neg = (bits >> (frac_bits + exp_bits)) & 1 == 1;
        let frac = bits & ((1u64 << frac_bits) - 1);
        let e = ((bits >> frac_bits) & ((1u64 << exp_bits) - 1)) as i32;
        let bias = (1i32 << (exp_bits - 1)) - 1;
        if e != 0 {
            let m = (1u64 << frac_bits) | frac;
            (
                neg,
                m,
                e - bias - frac_bits as i32,
                frac_bits,
                e != 1 && frac == 0,
            )
        } else {
            let mbit = if frac == 0 {
                0
            } else {
                63 - frac.leading_zeros()
            };
            (neg, frac, 1 - bias - frac_bits as i32, mbit, false)
        }
    }

    /// NumPy's Dragon4 in unique mode (finite values only).
    fn dragon4(self, mode: Cutoff, cutoff_max: i32, cutoff_min: i32) -> Dec {
        let (neg, m, e, mbit, unequal) = self.decompose();
        let (digits, exp) = dragon4(m, e, mbit, unequal, mode, cutoff_max, cutoff_min);
        Dec::normalized(neg, digits, exp)
    }

    /// The shortest digits that round-trip in this value's type.
    fn shortest(self) -> Dec {
        self.dragon4(Cutoff::Fraction, -1, -1)
    }

    /// NumPy's array positional digits: unique, at most `precision` fractional digits, all
    /// integer digits exact (`min_digits=0`).
    fn positional(self, precision: usize) -> Dec {
        self.dragon4(Cutoff::Fraction, precision as i32, 0)
    }

    /// NumPy's scientific digits: unique, at most `precision` fractional mantissa digits, and at
    /// least `min` (more exact digits when the unique ones are fewer).
    fn scientific(self, precision: usize, min: Option<usize>) -> Dec {
        self.dragon4(
            Cutoff::Total,
            precision as i32 + 1,
            min.map_or(-1, |m| m as i32 + 1),
        )
    }
}

/// Whether Dragon4's digit limits count all digits or fractional digits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cutoff {
    Total,
    Fraction,
}

/// A minimal unsigned big integer (little-endian 32-bit limbs) for Dragon4.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }

    fn pow2(n: u32) -> Big {
        let mut b = Big::from_u64(1);
        b.shl(n);
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn shl(&mut self, n: u32) {
        let (words, bits) = ((n / 32) as usize, n % 32);
        if bits > 0 {
            let mut carry = 0u32;
            for limb in self.0.iter_mut() {
                let next = *limb >> (32 - bits);
                *limb = (*limb << bits) | carry;
                carry = next;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if words > 0 && !self.0.is_empty() {
            self.0.splice(0..0, std::iter::repeat_n(0, words));
        }
    }

    fn mul_small(&mut self, k: u32) {
        let mut carry = 0u64;
        for limb in self.0.iter_mut() {
            let p = u64::from(*limb) * u64::from(k) + carry;
            *limb = p as u32;
            carry = p >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut n: u32) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        if n > 0 {
            self.mul_small(10u32.pow(n));
        }
    }

    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut r = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let s = u64::from(*self.0.get(i).unwrap_or(&0))
                + u64::from(*o.0.get(i).unwrap_or(&0))
                + carry;
            r.push(s as u32);
            carry = s >> 32;
        }
        if carry != 0 {
            r.push(carry as u32);
        }
        Big(r)
    }

    /// `self -= o`, requiring `self >= o`.
    fn sub_assign(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let d = i64::from(self.0[i]) - i64::from(*o.0.get(i).unwrap_or(&0)) - borrow;
            if d < 0 {
                self.0[i] = (d + (1i64 << 32)) as u32;
                borrow = 1;
            } else {
                self.0[i] = d as u32;
                borrow = 0;
            }
        }
        self.trim();
    }

    fn cmp(&self, o: &Big) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }
}

/// Dragon4 (Steele & White; Burger & Dybvig; Juckett) in unique mode, following NumPy's variant:
/// digits of `mantissa * 2^exponent` until they identify the value among its neighbours (with
/// IEEE round-half-even margins) *and* `cutoff_min` digits are printed, or until `cutoff_max`
/// digits (`-1`: no limit) are printed; the last digit is rounded. Returns the ASCII digits and
/// the decimal exponent of the first one.
fn dragon4(
    mantissa: u64,
    exponent: i32,
    mantissa_bit: u32,
    unequal_margins: bool,
    mode: Cutoff,
    cutoff_max: i32,
    cutoff_min: i32,
) -> (Vec<u8>, i32) {
    use std::cmp::Ordering;
    if mantissa == 0 {
        return (vec![b'0'], 0);
    }
    let is_even = mantissa.is_multiple_of(2);
    // value = sv / scale; margin_low = ml / scale is half the gap to the lower neighbour.
    let (mut sv, mut scale, mut ml) = {
        let extra = if unequal_margins { 2 } else { 1 };
        let mut sv = Big::from_u64(mantissa);
        if exponent > 0 {
            sv.shl(exponent as u32 + extra);
            (sv, Big::from_u64(1 << extra), Big::pow2(exponent as u32))
        } else {
            sv.shl(extra);
            (sv, Big::pow2((-exponent) as u32 + extra), Big::from_u64(1))
        }
    };
    let margin_high = |ml: &Big| {
        let mut mh = ml.clone();
        if unequal_margins {
            mh.mul_small(2);
        }
        mh
    };
    let log10_2 = std::f64::consts::LOG10_2;
    let mut digit_exp = ((mantissa_bit as i32 + exponent) as f64 * log10_2 - 0.69).ceil() as i32;
    if cutoff_max >= 0 && mode == Cutoff::Fraction && digit_exp <= -cutoff_max {
        digit_exp = -cutoff_max + 1;
    }
    if digit_exp > 0 {
        scale.mul_pow10(digit_exp as u32);
    } else if digit_exp < 0 {
        sv.mul_pow10((-digit_exp) as u32);
        ml.mul_pow10((-digit_exp) as u32);
    }
    if sv.cmp(&scale) != Ordering::Less {
        digit_exp += 1;
    } else {
        sv.mul_small(10);
        ml.mul_small(10);
    }
    let mut cutoff_max_exp = digit_exp - 16384;
    if cutoff_max >= 0 {
        let desired = match mode {
            Cutoff::Total => digit_exp - cutoff_max,
            Cutoff::Fraction => -cutoff_max,
        };
        cutoff_max_exp = cutoff_max_exp.max(desired);
    }
    let mut cutoff_min_exp = digit_exp;
    if cutoff_min >= 0 {
        let desired = match mode {
            Cutoff::Total => digit_exp - cutoff_min,
            Cutoff::Fraction => -cutoff_min,
        };
        cutoff_min_exp = cutoff_min_exp.min(desired);
    }
    let mut out_exp = digit_exp - 1;
    let mut digits = Vec::new();
    let (mut low, mut high, mut digit);
    loop {
        digit_exp -= 1;
        digit = 0u8;
        while sv.cmp(&scale) != Ordering::Less {
            sv.sub_assign(&scale);
            digit += 1;
        }
        let sv_high = sv.add(&margin_high(&ml));
        let c = sv.cmp(&ml);
        low = if is_even {
            c != Ordering::Greater
        } else {
            c == Ordering::Less
        };
        let c = sv_high.cmp(&scale);
        high = if is_even {
            c != Ordering::Less
        } else {
            c == Ordering::Greater
        };
        if ((low || high) && digit_exp <= cutoff_min_exp) || digit_exp == cutoff_max_exp {
            break;
        }
        digits.push(b'0' + digit);
        sv.mul_small(10);
        ml.mul_small(10);
    }
    let mut round_down = low;
    if low == high {
        let mut twice = sv.clone();
        twice.mul_small(2);
        round_down = match twice.cmp(&scale) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => digit % 2 == 0,
        };
    }
    if round_down {
        digits.push(b'0' + digit);
    } else if digit == 9 {
        loop {
            match digits.pop() {
                None => {
                    digits.push(b'1');
                    out_exp += 1;
                    break;
                }
                Some(b'9') => {}
                Some(d) => {
                    digits.push(d + 1);
                    break;
                }
            }
        }
    } else {
        digits.push(b'0' + digit + 1);
    }
    (digits, out_exp)
}

/// C++ `std::ostream << float` (`%g`, 6 significant digits) — how `ml_dtypes` prints
/// `bfloat16` elements and scalars (`1`, `0.100098`, `1.50204e-05`, `nan`).
fn bf16_repr(x: bf16) -> String {
    let v = x.to_f64();
    if v.is_nan() {
        return "nan".to_string();
    }
    if let Some(s) = non_finite(v) {
        return s.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let d = Dec::parse_sci(&format!("{v:.5e}"));
    if d.exp < -4 || d.exp >= 6 {
        let (ip, fp, e) = d.scientific_parts();
        let dot = if fp.is_empty() { "" } else { "." };
        format!("{ip}{dot}{fp}e{}", exp_str(e, 2))
    } else {
        let (ip, fp) = d.positional_parts();
        if fp.is_empty() {
            ip
        } else {
            format!("{ip}.{fp}")
        }
    }
}

/// A decimal `±d1.d2d3... × 10^exp` with no leading or trailing zero digits (`digits` empty for
/// zero).
#[derive(Clone, Debug, PartialEq)]
struct Dec {
    neg: bool,
    digits: Vec<u8>,
    exp: i32,
}

impl Dec {
    fn normalized(neg: bool, mut digits: Vec<u8>, mut exp: i32) -> Dec {
        let lead = digits.iter().take_while(|&&c| c == b'0').count();
        digits.drain(..lead);
        exp -= lead as i32;
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        if digits.is_empty() {
            exp = 0;
        }
        Dec { neg, digits, exp }
    }

    /// Parses Rust's `{:e}` output (`-1.25e-5`, `0e0`, `12e3`).
    fn parse_sci(s: &str) -> Dec {
        let (neg, s) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (mant, e) = s.split_once('e').expect("exponent");
        let int_len = mant.split('.').next().map_or(0, str::len) as i32;
        let digits: Vec<u8> = mant.bytes().filter(|&c| c != b'.').collect();
        let e: i32 = e.parse().expect("exponent");
        Dec::normalized(neg, digits, e + int_len - 1)
    }

    fn sign(&self) -> &'static str {
        if self.neg {
            "-"
        } else {
            ""
        }
    }

    /// Positional integer part (with sign, at least `0`) and fractional digits (maybe empty).
    fn positional_parts(&self) -> (String, String) {
        let ds = std::str::from_utf8(&self.digits).expect("ascii digits");
        if self.digits.is_empty() {
            return (format!("{}0", self.sign()), String::new());
        }
        if self.exp < 0 {
            let zeros = "0".repeat((-self.exp - 1) as usize);
            (format!("{}0", self.sign()), format!("{zeros}{ds}"))
        } else {
            let e = self.exp as usize;
            if ds.len() > e + 1 {
                (
                    format!("{}{}", self.sign(), &ds[..=e]),
                    ds[e + 1..].to_string(),
                )
            } else {
                let zeros = "0".repeat(e + 1 - ds.len());
                (format!("{}{ds}{zeros}", self.sign()), String::new())
            }
        }
    }

    /// Scientific integer digit (with sign), fractional digits (maybe empty) and exponent.
    fn scientific_parts(&self) -> (String, String, i32) {
        if self.digits.is_empty() {
            return (format!("{}0", self.sign()), String::new(), 0);
        }
        let ds = std::str::from_utf8(&self.digits).expect("ascii digits");
        (
            format!("{}{}", self.sign(), &ds[..1]),
            ds[1..].to_string(),
            self.exp,
        )
    }
}

/// NumPy's `FloatingFormat`, fitted to the shown float elements.
struct FloatFormat {
    exp_mode: bool,
    precision: usize,
    pad_left: usize,
    pad_right: usize,
    /// Fractional mantissa digits (scientific mode).
    frac_digits: usize,
    /// Exponent digits (scientific mode).
    exp_size: usize,
}

impl FloatFormat {
    fn new(vals: &[Fl], opts: &PrintOptions) -> Self {
        let precision = opts.precision;
        let finite: Vec<Fl> = vals
            .iter()
            .copied()
            .filter(|v| v.f64().is_finite())
            .collect();
        let mut exp_mode = false;
        let nonzero: Vec<(Fl, f64)> = finite
            .iter()
            .map(|&v| (v, v.f64().abs()))
            .filter(|&(_, a)| a != 0.0)
            .collect();
        if let Some(&(kind, _)) = nonzero.first() {
            let max = nonzero.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            let min = nonzero.iter().map(|p| p.1).fold(f64::MAX, f64::min);
            let cutoff = if opts.dtype_aware_exp_cutoff {
                kind.exp_cutoff()
            } else {
                1e8
            };
            exp_mode = max >= kind.round(cutoff)
                || min < kind.round(1e-4)
                || kind.round(max / min) > kind.round(1e3);
        }
        let mut f = FloatFormat {
            exp_mode,
            precision,
            pad_left: 0,
            pad_right: 0,
            frac_digits: 0,
            exp_size: 0,
        };
        if finite.is_empty() {
            f.exp_mode = false;
        } else if exp_mode {
            let mut int_w = 0;
            for v in &finite {
                let (ip, fp, e) = v.scientific(precision, None).scientific_parts();
                int_w = int_w.max(ip.len());
                f.frac_digits = f.frac_digits.max(fp.len());
                f.exp_size = f.exp_size.max(exp_str(e, 2).len() - 1);
            }
            f.pad_left = int_w;
            f.pad_right = f.exp_size + 2 + f.frac_digits;
        } else {
            for v in &finite {
                let (ip, fp) = v.positional(precision).positional_parts();
                f.pad_left = f.pad_left.max(ip.len());
                f.pad_right = f.pad_right.max(fp.len());
            }
        }
        if finite.len() != vals.len() {
            let neginf = vals.iter().any(|v| v.f64() == f64::NEG_INFINITY);
            let offset = f.pad_right + 1;
            f.pad_left = f
                .pad_left
                .max(3usize.saturating_sub(offset))
                .max((3 + usize::from(neginf)).saturating_sub(offset));
        }
        f
    }

    fn format(&self, v: Fl) -> String {
        let width = self.pad_left + self.pad_right + 1;
        if let Some(s) = non_finite(v.f64()) {
            return format!("{s:>width$}");
        }
        if self.exp_mode {
            let (ip, fp, e) = v
                .scientific(self.frac_digits, Some(self.frac_digits))
                .scientific_parts();
            format!(
                "{ip:>pl$}.{fp:0<fd$}e{}",
                exp_str(e, self.exp_size),
                pl = self.pad_left,
                fd = self.frac_digits
            )
        } else {
            let (ip, fp) = v.positional(self.precision).positional_parts();
            format!(
                "{ip:>pl$}.{fp:<pr$}",
                pl = self.pad_left,
                pr = self.pad_right
            )
        }
    }
}

/// Per-kind formats fitted to the shown elements.
struct Formatter {
    float: FloatFormat,
    int_width: usize,
}

impl Formatter {
    fn new(vals: &[FmtValue], opts: &PrintOptions) -> Self {
        let floats: Vec<Fl> = vals.iter().filter_map(|&v| Fl::from_value(v)).collect();
        let int_width = vals
            .iter()
            .map(|v| match v {
                FmtValue::Int(x) => x.to_string().len(),
                FmtValue::UInt(x) => x.to_string().len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        Formatter {
            float: FloatFormat::new(&floats, opts),
            int_width,
        }
    }

    fn format(&self, v: FmtValue) -> String {
        let w = self.int_width;
        match v {
            FmtValue::Int(x) => format!("{x:>w$}"),
            FmtValue::UInt(x) => format!("{x:>w$}"),
            FmtValue::Bool(b) => if b { " True" } else { "False" }.to_string(),
            FmtValue::BF16(x) => bf16_repr(x),
            _ => self.float.format(Fl::from_value(v).expect("float variant")),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Expected strings are `str(np.array(...))` from NumPy (2.4 with `legacy='2.2'`, identical
    //! to 1.26 on these) and `ml_dtypes` 0.5 for `bfloat16`.
    use super::*;

    fn f32s(shape: &[usize], v: &[f32]) -> String {
        format_values(shape, v)
    }

    fn f64s(shape: &[usize], v: &[f64]) -> String {
        format_values(shape, v)
    }

    fn f16s(shape: &[usize], v: &[f32]) -> String {
        let h: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
        format_values(shape, &h)
    }

    fn arange(n: usize) -> Vec<i64> {
        (0..n as i64).collect()
    }

    #[test]
    fn shapes() {
        assert_eq!(format_shape(&[]), "()");
        assert_eq!(format_shape(&[3]), "(3,)");
        assert_eq!(format_shape(&[2, 2]), "(2, 2)");
        assert_eq!(format_shape(&[1, 0, 5]), "(1, 0, 5)");
    }

    #[test]
    fn positional_floats() {
        assert_eq!(f32s(&[2, 2], &[1., 2., 3., 4.]), "[[1. 2.]\n [3. 4.]]");
        assert_eq!(f32s(&[3], &[1.5, 2., 3.]), "[1.5 2.  3. ]");
        assert_eq!(f32s(&[3], &[0.1, 0.2, 0.3]), "[0.1 0.2 0.3]");
        assert_eq!(f32s(&[1], &[1.0 / 3.0]), "[0.33333334]");
        assert_eq!(f64s(&[1], &[1.0 / 3.0]), "[0.33333333]");
        assert_eq!(f64s(&[2], &[0.001953125, 1.0]), "[0.00195312 1.        ]");
        assert_eq!(f32s(&[1], &[67108872.0]), "[67108872.]");
        let sevenths: Vec<f32> = (0..30).map(|i| i as f32 / 7.0).collect();
        assert_eq!(
            f32s(&[30], &sevenths),
            "[0.         0.14285715 0.2857143  0.42857143 0.5714286  0.71428573\n \
             0.85714287 1.         1.1428572  1.2857143  1.4285715  1.5714285\n \
             1.7142857  1.8571428  2.         2.142857   2.2857144  2.4285715\n \
             2.5714285  2.7142856  2.857143   3.         3.142857   3.2857144\n \
             3.4285715  3.5714285  3.7142856  3.857143   4.         4.142857  ]"
        );
        let v: Vec<f32> = (0..16).map(|i| i as f32).collect();
        assert_eq!(
            f32s(&[2, 2, 2, 2], &v),
            "[[[[ 0.  1.]\n   [ 2.  3.]]\n\n  [[ 4.  5.]\n   [ 6.  7.]]]\n\n\n \
             [[[ 8.  9.]\n   [10. 11.]]\n\n  [[12. 13.]\n   [14. 15.]]]]"
        );
    }

    #[test]
    fn scientific_floats() {
        assert_eq!(f64s(&[2], &[1e-5, 1.0]), "[1.e-05 1.e+00]");
        assert_eq!(f32s(&[2], &[0.1, 1e-5]), "[1.e-01 1.e-05]");
        assert_eq!(
            f32s(&[3], &[1.5e-5, 2.25e-3, 3.0]),
            "[1.50e-05 2.25e-03 3.00e+00]"
        );
        assert_eq!(f64s(&[2], &[1e-100, 1.0]), "[1.e-100 1.e+000]");
        assert_eq!(f32s(&[2], &[1e6, 1.0]), "[1.e+06 1.e+00]");
        assert_eq!(f32s(&[2], &[1e6, 1e3]), "[1000000.    1000.]");
        // float16 pads mantissas with real digits (NumPy's min_digits), not zeros.
        assert_eq!(
            f16s(&[3], &[65504.0, 2049.0, 0.5]),
            "[6.550e+04 2.048e+03 5.000e-01]"
        );
        assert_eq!(
            f16s(&[3], &[1.0 / 3.0, 2.0 / 3.0, -1.0]),
            "[ 0.3333  0.6665 -1.    ]"
        );
    }

    #[test]
    fn non_finite() {
        assert_eq!(f32s(&[2], &[f32::NAN, 1.0]), "[nan  1.]");
        assert_eq!(
            f64s(&[3], &[f64::NEG_INFINITY, 0.5, f64::NAN]),
            "[-inf  0.5  nan]"
        );
        assert_eq!(
            f64s(&[3], &[f64::NEG_INFINITY, 1e-7, f64::NAN]),
            "[  -inf 1.e-07    nan]"
        );
        assert_eq!(f32s(&[2], &[f32::NAN, f32::INFINITY]), "[nan inf]");
        assert_eq!(f32s(&[], &[f32::NEG_INFINITY]), "-inf");
    }

    #[test]
    fn scalars() {
        assert_eq!(f32s(&[], &[3.0]), "3.0");
        assert_eq!(f32s(&[], &[0.1]), "0.1");
        assert_eq!(f32s(&[], &[-0.0]), "-0.0");
        assert_eq!(f32s(&[], &[1e20]), "1e+20");
        assert_eq!(f32s(&[], &[1e-4]), "1e-04"); // f32(1e-4) < 1e-4 exactly
        assert_eq!(f64s(&[], &[1e-4]), "0.0001");
        assert_eq!(f32s(&[], &[1e6]), "1000000.0");
        assert_eq!(f64s(&[], &[1e16]), "1e+16");
        assert_eq!(f64s(&[], &[1.5e-5]), "1.5e-05");
        assert_eq!(format_values(&[], &[3i32]), "3");
        assert_eq!(format_values(&[], &[true]), "True");
        assert_eq!(
            format_scalar(FmtValue::UInt(u64::MAX)),
            "18446744073709551615"
        );
    }

    #[test]
    fn dtype_aware_cutoff() {
        let opts = PrintOptions {
            dtype_aware_exp_cutoff: true,
            ..PrintOptions::default()
        };
        let v = [1e6f32, 1.0];
        assert_eq!(
            format_array_with(&[2], &|i| v[i].into(), &opts),
            "[1.e+06 1.e+00]"
        );
        assert_eq!(format_scalar_with(1e6f32.into(), &opts), "1e+06");
        assert_eq!(
            format_scalar_with(f16::from_f32(1000.0).into(), &opts),
            "1e+03"
        );
        assert_eq!(
            format_scalar_with(1e15f64.into(), &opts),
            "1000000000000000.0"
        );
        let w = [1e7f64, 1.0];
        assert_eq!(
            format_array_with(&[2], &|i| w[i].into(), &opts),
            "[1.e+07 1.e+00]"
        );
    }

    #[test]
    fn ints_and_bools() {
        assert_eq!(format_values(&[3], &[1i64, 20, 300]), "[  1  20 300]");
        assert_eq!(
            format_values(&[2], &[i64::MAX, i64::MIN]),
            "[ 9223372036854775807 -9223372036854775808]"
        );
        assert_eq!(format_values(&[2], &[true, false]), "[ True False]");
        assert_eq!(format_values(&[2], &[true, true]), "[ True  True]");
        assert_eq!(
            format_values(&[3, 4], &[true; 12]),
            "[[ True  True  True  True]\n [ True  True  True  True]\n [ True  True  True  True]]"
        );
        assert_eq!(
            format_values(&[2, 3, 4], &arange(24)),
            "[[[ 0  1  2  3]\n  [ 4  5  6  7]\n  [ 8  9 10 11]]\n\n [[12 13 14 15]\n  [16 17 18 19]\n  [20 21 22 23]]]"
        );
        assert_eq!(format_values::<f32>(&[2, 0], &[]), "[]");
    }

    #[test]
    fn wrapping_and_summary() {
        assert_eq!(
            format_values(&[30], &arange(30)),
            "[ 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15 16 17 18 19 20 21 22 23\n 24 25 26 27 28 29]"
        );
        assert_eq!(
            format_values(&[1001], &arange(1001)),
            "[   0    1    2 ...  998  999 1000]"
        );
        assert_eq!(
            format_values(&[40, 30], &arange(1200)),
            "[[   0    1    2 ...   27   28   29]\n [  30   31   32 ...   57   58   59]\n \
             [  60   61   62 ...   87   88   89]\n ...\n [1110 1111 1112 ... 1137 1138 1139]\n \
             [1140 1141 1142 ... 1167 1168 1169]\n [1170 1171 1172 ... 1197 1198 1199]]"
        );
        let s = format_values(&[11, 11, 11], &arange(1331));
        assert!(s.starts_with(
            "[[[   0    1    2 ...    8    9   10]\n  [  11   12   13 ...   19   20   21]\n"
        ));
        assert!(s.contains("  [ 352  353  354 ...  360  361  362]]\n\n ...\n\n [[ 968  969  970"));
        assert!(s.ends_with("  [1320 1321 1322 ... 1328 1329 1330]]]"));
        // Only shown elements are read.
        let calls = std::cell::Cell::new(0usize);
        let get = |i: usize| {
            calls.set(calls.get() + 1);
            FmtValue::Int(i as i64)
        };
        format_array_with(&[1000, 1000], &get, &PrintOptions::default());
        assert_eq!(calls.get(), 36);
    }

    #[test]
    fn half_and_bfloat16() {
        assert_eq!(format_values(&[], &[f16::from_f32(0.1)]), "0.1");
        assert_eq!(format_values(&[], &[f16::from_f32(65504.0)]), "65500.0");
        assert_eq!(f16s(&[2], &[0.1, 1.5]), "[0.1 1.5]");
        let b: Vec<bf16> = [1.0, 0.1, -2.5, 1e6, 1.5e-5, f32::NAN, f32::NEG_INFINITY]
            .iter()
            .map(|&x| bf16::from_f32(x))
            .collect();
        assert_eq!(
            format_values(&[7], &b),
            "[1 0.100098 -2.5 999424 1.50204e-05 nan -inf]"
        );
        assert_eq!(format_values(&[], &[bf16::from_f32(3.0)]), "3");
    }

    #[test]
    fn dragon4_digits() {
        // (mantissa, exponent) = 1 * 2^0 → "1"; 0.1f64 shortest is "1" at 10^-1.
        assert_eq!(
            dragon4(1, 0, 0, false, Cutoff::Fraction, -1, -1),
            (b"1".to_vec(), 0)
        );
        let d = Fl::D(0.1).shortest();
        assert_eq!((d.digits.as_slice(), d.exp), (b"1".as_slice(), -1));
        let d = Fl::D(1.0 / 3.0).positional(8);
        assert_eq!(d.positional_parts(), ("0".into(), "33333333".into()));
        let d = Fl::S(-1.25e-5).shortest();
        assert_eq!(d.scientific_parts(), ("-1".into(), "25".into(), -5));
        assert_eq!(
            Fl::D(-0.0).shortest().positional_parts(),
            ("-0".into(), "".into())
        );
        assert_eq!(
            Fl::D(1.25e3).shortest().positional_parts(),
            ("1250".into(), "".into())
        );
        assert_eq!(exp_str(-5, 2), "-05");
        assert_eq!(exp_str(100, 2), "+100");
    }
}
