//! Integration tests of ferroflow-keras, one module per area.

mod activations;
mod callbacks;
mod datasets;
mod distribute;
mod fit_dataset;
mod initializers;
mod layers_attention;
mod layers_conv;
mod layers_core;
mod layers_merge;
mod layers_norm;
mod layers_rnn;
mod layers_rnn_fused;
mod losses;
mod masks;
mod metrics;
mod models;
mod optimizers;
mod plot;
mod preprocessing_image;
mod preprocessing_lookup;
mod regularizers;
mod seed_cnn;
mod tensorboard;
mod traced_fit;
mod traced_random;
