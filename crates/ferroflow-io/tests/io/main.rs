//! ferroflow-io integration tests: the HDF5 reader against files h5py and Keras wrote, the
//! writer against our reader and (when python with h5py/keras is present) against h5py and
//! Keras, corrupted files, and Keras `.weights.h5` interoperability.

mod checkpoint;
mod common;
mod hdf5_corrupt;
mod hdf5_read;
mod hdf5_write;
mod keras_format;
mod keras_weights;
mod legacy_save;
mod mha;
mod named_weights;
