mod callbacks;
mod metrics;
