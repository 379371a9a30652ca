//! Corrupt and truncated files: errors naming the file, never panics. Real files (h5py- and
//! Keras-written) are truncated and corrupted at many offsets, and each result is walked whole.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::common::{fixture, walk_bytes};

const FILES: [&str; 5] = [
    "mlp.weights.h5",
    "kinds.h5",
    "latest.h5",
    "keras2_mlp.h5",
    "mlp_legacy.h5",
];

fn offsets(len: usize, stride: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..len.min(512)).collect();
    v.extend((512..len).step_by(stride));
    v
}

#[test]
fn truncated_files_are_errors_not_panics() {
    for name in FILES {
        let bytes = std::fs::read(fixture(name)).unwrap();
        if let Err(e) = walk_bytes(name, bytes.clone()) {
            panic!("{name} itself must read: {e}");
        }
        let mut ok_after = Vec::new();
        for cut in offsets(bytes.len(), 61) {
            let r = catch_unwind(AssertUnwindSafe(|| walk_bytes(name, bytes[..cut].to_vec())))
                .unwrap_or_else(|_| panic!("{name} truncated to {cut} bytes panicked"));
            match r {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(name),
                        "{name} cut at {cut}: error does not name the file: {msg}"
                    );
                }
                Ok(_) => ok_after.push(cut),
            }
        }
        // Only a cut inside bytes nothing reads (unused tails of preallocated nodes, kinds.h5's
        // never-read chunked data) may still parse; everything before that is an error.
        let first_ok = ok_after.first().copied().unwrap_or(bytes.len());
        assert!(
            ok_after.len() * 20 < offsets(bytes.len(), 61).len(),
            "{name}: {} of the truncations read without error (first at {first_ok})",
            ok_after.len()
        );
    }
}

#[test]
fn truncation_error_names_the_offset() {
    let bytes = std::fs::read(fixture("mlp.weights.h5")).unwrap();
    let err = walk_bytes("mlp.weights.h5", bytes[..bytes.len() / 2].to_vec())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mlp.weights.h5") && err.contains("byte offset 0x"),
        "{err}"
    );
    let err = walk_bytes("x.h5", bytes[..20].to_vec())
        .unwrap_err()
        .to_string();
    assert!(err.contains("x.h5"), "{err}");
}

#[test]
fn corrupted_bytes_never_panic() {
    for name in FILES {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let mut errors = 0;
        let mut total = 0;
        for at in offsets(bytes.len(), 37) {
            for value in [0xffu8, 0x00, bytes[at] ^ 0x10, 0x7f] {
                if bytes[at] == value {
                    continue;
                }
                let mut b = bytes.clone();
                b[at] = value;
                total += 1;
                let r = catch_unwind(AssertUnwindSafe(|| walk_bytes(name, b)))
                    .unwrap_or_else(|_| panic!("{name} with byte {at} set to {value:#x} panicked"));
                if let Err(e) = r {
                    errors += 1;
                    assert!(e.to_string().contains(name), "{e}");
                }
            }
        }
        // Many corruptions hit data bytes (any value is valid there); structure hits are errors.
        assert!(
            errors > 0 && total > 0,
            "{name}: {errors} errors of {total}"
        );
    }
}

#[test]
fn huge_sizes_in_headers_do_not_allocate() {
    // Superblock claiming 2-byte... and an object header claiming a 4 GiB message block.
    let mut bytes = std::fs::read(fixture("mlp.weights.h5")).unwrap();
    // The root object header address is in the superblock's root entry (offset 64 for v0).
    let root = u64::from_le_bytes(bytes[64..72].try_into().unwrap()) as usize;
    bytes[root + 8..root + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = walk_bytes("huge.h5", bytes).unwrap_err().to_string();
    assert!(
        err.contains("huge.h5") && err.contains("past the end"),
        "{err}"
    );
}

/// xorshift64*: a small deterministic generator for the mutation runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A libFuzzer-style mutation loop without libFuzzer: each case applies 1–8 random edits
/// (byte set, 8-byte field set to an extreme value, truncation, chunk copy) to a fixture and
/// walks the result. `FERROFLOW_FUZZ_ITERS` raises the count (the default keeps CI fast).
#[test]
fn random_mutations_never_panic() {
    let iters: usize = std::env::var("FERROFLOW_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let files: Vec<(&str, Vec<u8>)> = FILES
        .iter()
        .map(|n| (*n, std::fs::read(fixture(n)).unwrap()))
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..iters {
        let (name, base) = &files[case % files.len()];
        let mut b = base.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(b.len());
            match rng.below(4) {
                0 => b[at] = rng.next() as u8,
                1 => {
                    let v = [0u64, u64::MAX, 1 << 40, b.len() as u64 - 1][rng.below(4)];
                    let end = (at + 8).min(b.len());
                    b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
                }
                2 => b.truncate(at.max(1)),
                _ => {
                    let from = rng.below(b.len());
                    let n = rng.below(64).min(b.len() - from).min(b.len() - at);
                    let chunk = b[from..from + n].to_vec();
                    b[at..at + n].copy_from_slice(&chunk);
                }
            }
        }
        let r = catch_unwind(AssertUnwindSafe(|| walk_bytes(name, b.clone())));
        if r.is_err() {
            let dump = std::env::temp_dir().join(format!("ff_fuzz_crash_{case}.h5"));
            std::fs::write(&dump, &b).unwrap();
            panic!(
                "case {case} ({name}) panicked; input saved to {}",
                dump.display()
            );
        }
    }
}
