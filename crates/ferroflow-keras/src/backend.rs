//! Session-wide state in Keras's spirit: unique layer names, the global random seed, and the
//! symbolic shape type (`Shape`, with `None` for unknown dimensions).
//!
//! State is per thread, as a Keras "session" is per Python process: two tests building models
//! on two threads never see each other's names or seeds.

use std::cell::RefCell;
use std::collections::HashMap;

use ferroflow_core::{Error, Result};

/// A Keras shape: `None` for an unknown dimension (the batch dimension is always `None` in a
/// model's shapes). `(None, 26, 26, 32)` is `vec![None, Some(26), Some(26), Some(32)]`.
pub type Shape = Vec<Option<usize>>;

/// Keras's fuzz factor, `keras.config.epsilon()`.
pub const EPSILON: f64 = 1e-7;

/// The seed used until [`set_random_seed`] is called: ferroflow is reproducible by default.
const DEFAULT_SEED: u64 = 1337;

struct Session {
    name_counts: HashMap<String, usize>,
    seed: u64,
    draws: u64,
}

impl Session {
    fn new() -> Session {
        Session {
            name_counts: HashMap::new(),
            seed: DEFAULT_SEED,
            draws: 0,
        }
    }
}

thread_local! {
    static SESSION: RefCell<Session> = RefCell::new(Session::new());
}

/// `keras.utils.set_random_seed`: re-seeds the stream that initializers, dropout and shuffling
/// draw their seeds from. Building the same model after the same call gives the same weights.
/// Like Keras (which calls `tf.random.set_seed`), it also sets ferroflow-core's global seed, so
/// a data pipeline's `shuffle(buffer, None)` built afterwards is reproducible too.
pub fn set_random_seed(seed: u64) {
    ferroflow_core::ops::random::set_global_seed(Some(seed));
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        s.seed = seed;
        s.draws = 0;
    });
}

/// `keras.backend.clear_session`: resets layer-name counters (the next `Dense` is `dense` again)
/// and the seed stream to the last seed set.
pub fn clear_session() {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        s.name_counts.clear();
        s.draws = 0;
    });
}

/// splitmix64: a cheap, well-mixed map from a counter to a seed.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The next seed of the session's stream (a function of the global seed and how many seeds were
/// drawn before, so a program's sequence of draws is reproducible).
pub fn next_seed() -> u64 {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        s.draws += 1;
        mix(s.seed ^ mix(s.draws))
    })
}

/// The session's seed stream position: `(seed, draws)`. With [`set_seed_state`] it lets a
/// checkpoint resume the stream exactly where training left it.
pub fn seed_state() -> (u64, u64) {
    SESSION.with(|s| {
        let s = s.borrow();
        (s.seed, s.draws)
    })
}

/// Puts the seed stream at `(seed, draws)` (from [`seed_state`]): the next [`next_seed`] is the
/// one that followed then.
pub fn set_seed_state(seed: u64, draws: u64) {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        s.seed = seed;
        s.draws = draws;
    });
}

/// A unique name from `base` as Keras makes them: `dense`, then `dense_1`, `dense_2`, ...
pub fn unique_name(base: &str) -> String {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        let n = s.name_counts.entry(base.to_string()).or_insert(0);
        let name = if *n == 0 {
            base.to_string()
        } else {
            format!("{base}_{n}")
        };
        *n += 1;
        name
    })
}

/// `Conv2D` → `conv2d`, `MaxPooling2D` → `max_pooling2d`, `BatchNormalization` →
/// `batch_normalization`: Keras's `to_snake_case` (an underscore before a capital that starts a
/// lower-case word, or that follows a lower-case letter), so digits stay attached (`conv2d`).
pub fn to_snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev_lower = chars[i - 1].is_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if (prev_lower || next_lower) && chars[i - 1] != '_' {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Formats a Keras shape as Keras prints it: `(None, 26, 26, 32)`, `(None, 10)`, `(None,)`.
pub fn fmt_shape(shape: &[Option<usize>]) -> String {
    let parts: Vec<String> = shape
        .iter()
        .map(|d| d.map_or("None".to_string(), |v| v.to_string()))
        .collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// The Keras shape of a concrete tensor with its batch dimension made unknown.
pub fn batch_shape(shape: &[usize]) -> Shape {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if i == 0 { None } else { Some(d) })
        .collect()
}

/// A shape with the batch dimension prepended: `(28, 28, 1)` → `(None, 28, 28, 1)`.
pub fn with_batch(shape: &[usize]) -> Shape {
    std::iter::once(None)
        .chain(shape.iter().map(|&d| Some(d)))
        .collect()
}

/// A value given by name or by value, resolved when the builder is used (Keras accepts
/// `activation="relu"` as well as `activation=keras.activations.relu`). A bad name is kept as its
/// error, which the layer's `build` (or `compile`) returns.
#[derive(Clone, Debug)]
pub struct Arg<T>(pub(crate) Result<T>);

impl<T> Arg<T> {
    /// The resolved value, or the error of a bad name.
    pub fn resolve(self) -> Result<T> {
        self.0
    }
}

/// The error for an unknown name, listing the valid ones.
pub(crate) fn unknown_name(what: &str, name: &str, valid: &[&str]) -> Error {
    Error::invalid(
        what,
        format!(
            "unknown {what} name {name:?}; valid names are: {}",
            valid.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_keras() {
        assert_eq!(to_snake_case("Conv2D"), "conv2d");
        assert_eq!(to_snake_case("MaxPooling2D"), "max_pooling2d");
        assert_eq!(to_snake_case("BatchNormalization"), "batch_normalization");
        assert_eq!(to_snake_case("Dense"), "dense");
        assert_eq!(
            to_snake_case("GlobalAveragePooling2D"),
            "global_average_pooling2d"
        );
        assert_eq!(to_snake_case("Conv2DTranspose"), "conv2d_transpose");
        assert_eq!(to_snake_case("ZeroPadding2D"), "zero_padding2d");
        assert_eq!(to_snake_case("UpSampling2D"), "up_sampling2d");
        assert_eq!(to_snake_case("RepeatVector"), "repeat_vector");
        assert_eq!(to_snake_case("InputLayer"), "input_layer");
    }

    #[test]
    fn names_count_up() {
        clear_session();
        assert_eq!(unique_name("dense"), "dense");
        assert_eq!(unique_name("dense"), "dense_1");
        assert_eq!(unique_name("conv2d"), "conv2d");
        clear_session();
        assert_eq!(unique_name("dense"), "dense");
    }

    #[test]
    fn seeds_are_reproducible() {
        set_random_seed(3);
        let a = (next_seed(), next_seed());
        set_random_seed(3);
        assert_eq!(a, (next_seed(), next_seed()));
        assert_ne!(a.0, a.1);
    }

    #[test]
    fn shapes_print_like_keras() {
        assert_eq!(
            fmt_shape(&[None, Some(26), Some(26), Some(32)]),
            "(None, 26, 26, 32)"
        );
        assert_eq!(fmt_shape(&[None]), "(None,)");
    }
}
