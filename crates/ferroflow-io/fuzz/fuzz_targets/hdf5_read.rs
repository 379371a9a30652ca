//! Fuzzes the HDF5 reader: any input must give `Ok` or an `Err`, never a panic, a hang or a
//! huge allocation. Seed the corpus with the fixtures:
//! `mkdir -p corpus/hdf5_read && cp ../tests/fixtures/*.h5 corpus/hdf5_read/`.
#![no_main]

use ferroflow_io::hdf5::{File, Group, Node};
use libfuzzer_sys::fuzz_target;

fn walk(g: &Group, depth: usize, budget: &mut usize) {
    if depth > 16 || *budget == 0 {
        return;
    }
    *budget -= 1;
    for a in g.attrs() {
        let _ = a.value();
    }
    for name in g.member_names() {
        match g.member(&name) {
            Ok(Node::Group(sub)) => walk(&sub, depth + 1, budget),
            Ok(Node::Dataset(d)) => {
                for a in d.attrs() {
                    let _ = a.value();
                }
                let _ = d.read();
                let _ = d.read_strings();
            }
            Err(_) => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = File::from_bytes("fuzz.h5", data.to_vec()) {
        let _ = f.tree();
        if let Ok(root) = f.root() {
            let mut budget = 10_000;
            walk(&root, 0, &mut budget);
        }
    }
});
