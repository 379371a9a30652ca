//! Process-wide A/B switches of the fast paths, read once from the environment.
//!
//! Each fast path can be turned off to time it against the path it replaced, in one binary:
//!
//! | variable | turns off |
//! | --- | --- |
//! | `FF_CONV_POOL` | the graph rewrite to `_FusedConv2DMaxPool` (and its backward) |
//! | `FF_CONV_POOL_GRAD` | the graph rewrite to `_FusedConv2DMaxPoolGrad` |
//! | `FF_CONV_DIRECT_FWD` | the AVX-512 direct forward of small-K convolutions |
//! | `FF_CONV_FWD_WREG` | that forward's 3x3 one-channel kernels with the filter in registers |
//! | `FF_CONV_FWD_AVX2` | the AVX2 direct forward (plain and fused 2x2 max-pool) of 3x3 one-channel convolutions on CPUs without AVX-512 (back to the generic bodies compiled for AVX2; same bits) |
//! | `FF_CONV_DIRECT_FILTER` | the AVX-512 direct filter gradient of small-K convolutions |
//! | `FF_CONV_DIRECT_FILTER_AVX2` | its AVX2 kernel on CPUs without AVX-512 (back to the generic bodies compiled for AVX2; same bits) |
//! | `FF_CONV_FILTER2` | the direct register-tiled filter gradient of `oc % 16 == 0` convolutions |
//! | `FF_CONV_BWD_INPUT` | the direct input gradient of stride-1 convolutions |
//! | `FF_CONV_BWD_INPUT_AVX2` | its AVX2 intrinsics bodies for `f32` one-channel inputs (conv1) on CPUs without AVX-512 (back to the tiled im2col + GEMM path) |
//! | `FF_CONV_BWD_INPUT3` | its 3x3 row kernel for one-channel inputs (`band3x3`) |
//! | `FF_POOL_GRAD_BIAS` | the AVX-512 and AVX2 intrinsics bias-gradient blocks of `_FusedConv2DMaxPoolGrad` (back to the portable body compiled for AVX-512 / AVX2; same bits) |
//! | `FF_POOL_GRAD_ONE_PASS` | the one-pass filter + bias driver of `_FusedConv2DMaxPoolGrad` (back to a filter pass then a bias pass; same bits) |
//! | `FF_CONV1_POOL_WINDOWS` | the window-by-window pooled filter-gradient kernel (back to the pixel kernel; same bits) |
//! | `FF_DENSE_GEMM` | the packed Dense-layer micro-kernel (back to the `gemm` crate) |
//! | `FF_DENSE_KBLOCK` | the k-blocked driver of that kernel (back to one pass per tile) |
//! | `FF_CONV_GATHER` | the convolution tiles reading their im2col columns straight from the input and adding the input gradient straight into `dx` (`conv::Im2colOffsets`; back to copied columns and col2im: the same bits except the input gradient's summation order) |
//! | `FF_GEMM_AVX2` | the packed AVX2 f32 matrix product (`gemm_avx2`) on CPUs without AVX-512 (back to the `gemm` crate) |
//! | `FF_CALLER_WORKER` | the thread that runs ops joining the thread pool (`parallel::join_thread_pool`) |
//!
//! A switch is off when its variable is `off` or `0` (surrounding blanks ignored) and on
//! otherwise, unset included. Which kernel runs is then a pure function of the shapes for the
//! whole process, so results stay deterministic.

use std::sync::OnceLock;

/// Whether the switch `var` is on, reading the variable on the first call only (`cell` keeps the
/// answer; give each switch its own `static`).
pub(crate) fn on(cell: &OnceLock<bool>, var: &str) -> bool {
    *cell.get_or_init(|| !is_off(std::env::var(var).ok().as_deref()))
}

/// Whether a variable's value turns its switch off: `off` or `0`, blanks around ignored.
fn is_off(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("off") | Some("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_off_and_zero_turn_a_switch_off() {
        for (value, off) in [
            (None, false),
            (Some(""), false),
            (Some("1"), false),
            (Some("on"), false),
            (Some("OFF"), false),
            (Some("off"), true),
            (Some("0"), true),
            (Some(" 0 "), true),
            (Some("off\n"), true),
        ] {
            assert_eq!(is_off(value), off, "{value:?}");
        }
    }

    #[test]
    fn an_unset_switch_is_on_and_the_answer_is_kept() {
        // A variable nobody sets (tests never change the environment: other threads read it).
        let cell = OnceLock::new();
        assert!(on(&cell, "FF_TEST_ENV_SWITCH_NEVER_SET"));
        assert_eq!(cell.get(), Some(&true));
        let off = OnceLock::new();
        off.set(false).expect("empty cell");
        assert!(
            !on(&off, "FF_TEST_ENV_SWITCH_NEVER_SET"),
            "a kept answer is not re-read"
        );
    }
}
