//! A sequence classifier on a task with a known answer: **does the token sequence contain the
//! consecutive pattern `1 2 3`?** Sequences of 12–24 tokens drawn uniformly from `1..=6`,
//! zero-padded at the end to 24; half of them have the pattern planted at a random place, the
//! other half are redrawn until they do not contain it (so the exact label is known and the
//! classes are balanced). 8,000 training and 2,000 test sequences, generated from a fixed seed.
//!
//! Two models (`cargo run --release --example seq_classifier -- [conv|transformer]`):
//! - `conv` (default): Embedding(7, 16) → Conv1D(32, 3, relu) → GlobalMaxPooling1D →
//!   Dense(1, sigmoid). A 3-wide filter can match the pattern exactly, so test accuracy should
//!   approach 100%.
//! - `transformer`: two TransformerEncoder-like blocks on the functional API — Embedding(7, 32) +
//!   PositionEmbedding(24) → [MultiHeadAttention(4 heads, key_dim 8) self-attention with a
//!   residual and LayerNormalization → feed-forward Dense(64, relu) → Dense(32) with a residual
//!   and LayerNormalization] × 2 → GlobalMaxPooling1D → Dense(1, sigmoid). (Padding is not
//!   masked here, so the model learns to ignore token 0.)
//!
//! Both print their test accuracy at the end. Measured in a release build on 2 cores
//! (2026-11-25): `conv` reaches test accuracy 1.0000 after 8 epochs (about 1 s of training);
//! `transformer` 0.9955 after 30 epochs (about 32 s).

use std::time::Instant;

use ferroflow::keras::layers::{
    Add, Conv1D, Dense, Embedding, GlobalMaxPooling1D, KerasTensor, LayerHandle,
    LayerNormalization, MultiHeadAttention, PositionEmbedding,
};
use ferroflow::keras::optimizers::Adam;
use ferroflow::keras::prelude::*;
use ferroflow::keras::utils::set_random_seed;
use ferroflow::{DType, Result, Tensor};

const LEN: usize = 24;
const PATTERN: [i32; 3] = [1, 2, 3];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn contains(seq: &[i32]) -> bool {
    seq.windows(3).any(|w| w == PATTERN)
}

/// `n` padded sequences `[n, LEN]` and their labels `[n, 1]`.
fn make(n: usize, rng: &mut Rng) -> Result<(Tensor, Tensor)> {
    let mut x = Vec::with_capacity(n * LEN);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let positive = i % 2 == 0;
        let len = 12 + rng.below(LEN - 12 + 1);
        let seq = loop {
            let mut s: Vec<i32> = (0..len).map(|_| 1 + rng.below(6) as i32).collect();
            if positive {
                let at = rng.below(len - 2);
                s[at..at + 3].copy_from_slice(&PATTERN);
            }
            if contains(&s) == positive {
                break s;
            }
        };
        x.extend(&seq);
        x.extend(std::iter::repeat_n(0, LEN - len));
        y.push(positive as i32 as f32);
    }
    Ok((
        Tensor::from_vec(x, &[n, LEN])?,
        Tensor::from_vec(y, &[n, 1])?,
    ))
}

fn conv_model() -> Result<Model> {
    let mut m = Sequential::new();
    m.add(Input::with_shape(&[Some(LEN)], DType::I32, None))?;
    m.add(Embedding::new(7, 16))?;
    m.add(Conv1D::new(32, 3).activation("relu"))?;
    m.add(GlobalMaxPooling1D::new())?;
    m.add(Dense::new(1).activation("sigmoid"))?;
    Ok(m.into())
}

/// One TransformerEncoder-like block (keras_hub's `TransformerEncoder` without dropout):
/// self-attention + residual + LayerNormalization, then a feed-forward pair + residual +
/// LayerNormalization.
fn encoder_block(x: KerasTensor, heads: usize, key_dim: usize, ff: usize) -> Result<KerasTensor> {
    let dim = x.shape().last().copied().flatten().unwrap_or(32);
    let attn = MultiHeadAttention::new(heads, key_dim).apply(vec![x.clone(), x.clone()])?;
    let x = LayerNormalization::new().apply(Add::new().apply(vec![x, attn])?)?;
    let h = Dense::new(ff).activation("relu").apply(x.clone())?;
    let h = Dense::new(dim).apply(h)?;
    LayerNormalization::new().apply(Add::new().apply(vec![x, h])?)
}

fn transformer_model() -> Result<Model> {
    let inp = Input::with_shape(&[Some(LEN)], DType::I32, None);
    let tok = Embedding::new(7, 32).apply(inp.clone())?;
    let pos = PositionEmbedding::new(LEN).apply(tok.clone())?;
    let mut x = Add::new().apply(vec![tok, pos])?;
    for _ in 0..2 {
        x = encoder_block(x, 4, 8, 64)?;
    }
    let x = GlobalMaxPooling1D::new().apply(x)?;
    let out = LayerHandle::new(Dense::new(1).activation("sigmoid")).apply(x)?;
    Model::new(inp, out)
}

fn main() -> Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "conv".into());
    let mut rng = Rng(2026);
    let (xtr, ytr) = make(8000, &mut rng)?;
    let (xte, yte) = make(2000, &mut rng)?;
    set_random_seed(1);
    let (mut model, epochs) = match which.as_str() {
        "conv" => (conv_model()?, 8),
        "transformer" => (transformer_model()?, 30),
        other => {
            return Err(ferroflow::Error::invalid(
                "seq_classifier",
                format!("unknown model {other:?}: use conv or transformer"),
            ))
        }
    };
    model.compile(
        Adam::new().learning_rate(0.003),
        "binary_crossentropy",
        ["accuracy"],
    )?;
    model.summary();
    let t0 = Instant::now();
    model
        .fit(&xtr, &ytr)
        .epochs(epochs)
        .batch_size(64)
        .validation_split(0.1)
        .verbose(2)
        .run()?;
    let scores = model.evaluate(&xte, &yte).verbose(0).run()?;
    println!(
        "{which}: test loss {:.4}, test accuracy {:.4} (chance 0.5) after {epochs} epochs in {:.0} s",
        scores[0],
        scores[1],
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
