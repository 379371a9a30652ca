//! The `Dataset` transformations: values against expectations computed here, cardinalities,
//! determinism, and the error cases.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferroflow_core::{ops, DType, Error, Result, Tensor};
use ferroflow_data::{Cardinality, Dataset, Element, AUTOTUNE};
use half::{bf16, f16};

/// One pass of a dataset of int64 scalars.
fn ints(ds: &Dataset) -> Result<Vec<i64>> {
    ds.iter().map(|e| e?.tensor()?.item::<i64>()).collect()
}

/// One pass of a dataset of int64 vectors.
fn vecs(ds: &Dataset) -> Result<Vec<Vec<i64>>> {
    ds.iter().map(|e| e?.tensor()?.to_vec::<i64>()).collect()
}

fn t_i64(v: Vec<i64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(v, shape).expect("test tensor")
}

fn int_elem(v: Vec<i64>) -> Element {
    let n = v.len();
    Element::Tensor(t_i64(v, &[n]))
}

fn square(e: Element) -> Result<Element> {
    Ok(Element::Tensor(ops::square(e.tensor()?)?))
}

// ---------------------------------------------------------------- sources

#[test]
fn range_from_iter_and_from_tensor_slices() -> Result<()> {
    assert_eq!(ints(&Dataset::range(4))?, vec![0, 1, 2, 3]);
    assert_eq!(Dataset::range(4).cardinality(), Some(4));
    let ds = Dataset::from_iter(vec![int_elem(vec![1, 2]), int_elem(vec![3])]);
    assert_eq!(vecs(&ds)?, vec![vec![1, 2], vec![3]]);
    assert_eq!(ds.cardinality(), Some(2));

    // Slices of a transposed (non-contiguous) tensor are its rows.
    let x = t_i64((0..6).collect(), &[2, 3]);
    let xt = ops::transpose(&x, &[1, 0])?; // (3, 2): rows [0, 3], [1, 4], [2, 5]
    let ds = Dataset::from_tensor_slices(xt)?;
    assert_eq!(vecs(&ds)?, vec![vec![0, 3], vec![1, 4], vec![2, 5]]);

    let mut d = BTreeMap::new();
    d.insert("a".to_string(), Element::Tensor(t_i64(vec![1, 2], &[2])));
    d.insert("b".to_string(), Element::Tensor(t_i64(vec![3, 4, 5], &[3])));
    let err = Dataset::from_tensor_slices(Element::Dict(d)).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    Ok(())
}

// ---------------------------------------------------------------- map / filter

#[test]
fn map_and_filter_values() -> Result<()> {
    let ds = Dataset::range(6).map(|e| {
        let v = e.tensor()?.item::<i64>()?;
        Ok(Element::Tensor(Tensor::scalar(3 * v + 1)))
    });
    assert_eq!(ds.cardinality(), Some(6));
    let expected: Vec<i64> = (0..6).map(|v| 3 * v + 1).collect();
    assert_eq!(ints(&ds)?, expected);

    let f = Dataset::range(10).filter(|e| Ok(e.tensor()?.item::<i64>()? % 3 == 0));
    assert_eq!(f.cardinality(), None);
    assert_eq!(f.cardinality_kind(), Cardinality::Unknown);
    assert_eq!(ints(&f)?, vec![0, 3, 6, 9]);
    Ok(())
}

#[test]
fn map_errors_are_yielded_in_place() {
    let ds = Dataset::range(4).map(|e| {
        if e.tensor()?.item::<i64>()? == 2 {
            Err(Error::invalid("my_fn", "two is not allowed"))
        } else {
            Ok(e)
        }
    });
    let out: Vec<Result<Element>> = ds.iter().collect();
    assert_eq!(out.len(), 4);
    assert!(out[0].is_ok() && out[1].is_ok() && out[3].is_ok());
    let msg = out[2].as_ref().unwrap_err().to_string();
    assert!(msg.contains("two is not allowed"), "{msg}");
}

#[test]
fn map_parallel_equals_map_and_keeps_order() -> Result<()> {
    let n = 37;
    let expected: Vec<i64> = (0..n as i64).map(|v| v * v).collect();
    for width in [0, 1, 2, 3, 8, 64, AUTOTUNE] {
        let ds = Dataset::range(n).map_parallel(square, width);
        assert_eq!(ints(&ds)?, expected, "num_parallel_calls = {width}");
        assert_eq!(ds.cardinality(), Some(n));
    }
    // Later elements finish first; the output order must still be the input order.
    let slow_first = Dataset::range(12).map_parallel(
        |e| {
            let v = e.tensor()?.item::<i64>()?;
            std::thread::sleep(std::time::Duration::from_millis((12 - v) as u64));
            Ok(e)
        },
        6,
    );
    assert_eq!(ints(&slow_first)?, (0..12).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn map_parallel_error_in_place() {
    let ds = Dataset::range(10).map_parallel(
        |e| {
            if e.tensor()?.item::<i64>()? == 5 {
                Err(Error::invalid("f", "bad five"))
            } else {
                Ok(e)
            }
        },
        4,
    );
    let out: Vec<Result<Element>> = ds.iter().collect();
    assert_eq!(out.len(), 10);
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r.is_err(), i == 5, "element {i}");
    }
}

// ---------------------------------------------------------------- shuffle

#[test]
fn shuffle_is_a_seeded_reproducible_permutation() -> Result<()> {
    let n = 50;
    let a = Dataset::range(n).shuffle(n, Some(1234), true);
    let b = Dataset::range(n).shuffle(n, Some(1234), true);
    let epochs_a: Vec<Vec<i64>> = (0..3).map(|_| ints(&a)).collect::<Result<_>>()?;
    let epochs_b: Vec<Vec<i64>> = (0..3).map(|_| ints(&b)).collect::<Result<_>>()?;
    assert_eq!(epochs_a, epochs_b, "same seed, same sequence of epochs");
    for e in &epochs_a {
        let mut s = e.clone();
        s.sort();
        assert_eq!(s, (0..n as i64).collect::<Vec<_>>(), "a permutation");
        assert_ne!(e, &(0..n as i64).collect::<Vec<_>>(), "actually shuffled");
    }
    assert_ne!(epochs_a[0], epochs_a[1], "reshuffled each iteration");
    assert_ne!(epochs_a[1], epochs_a[2]);
    let other_seed = Dataset::range(n).shuffle(n, Some(1235), true);
    assert_ne!(ints(&other_seed)?, epochs_a[0]);
    assert_eq!(a.cardinality(), Some(n));
    Ok(())
}

#[test]
fn shuffle_without_reshuffle_repeats_the_first_order() -> Result<()> {
    let ds = Dataset::range(30).shuffle(30, Some(9), false);
    let first = ints(&ds)?;
    assert_ne!(first, (0..30).collect::<Vec<_>>());
    for _ in 0..3 {
        assert_eq!(ints(&ds)?, first);
    }
    // repeat() starts new passes of the shuffle: with reshuffling they differ.
    let rep = Dataset::range(20)
        .shuffle(20, Some(5), true)
        .repeat(Some(2));
    let v = ints(&rep)?;
    assert_eq!(v.len(), 40);
    assert_ne!(v[..20], v[20..]);
    let mut s1 = v[..20].to_vec();
    s1.sort();
    assert_eq!(s1, (0..20).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn shuffle_buffer_one_keeps_order_and_small_buffers_bound_displacement() -> Result<()> {
    let ds = Dataset::range(25).shuffle(1, Some(3), true);
    assert_eq!(ints(&ds)?, (0..25).collect::<Vec<_>>());
    // With a buffer of B, output k is drawn from the first k + B inputs.
    for b in [2usize, 5] {
        for seed in 0..20 {
            let v = ints(&Dataset::range(40).shuffle(b, Some(seed), true))?;
            for (k, &x) in v.iter().enumerate() {
                assert!(
                    (x as usize) < k + b,
                    "buffer {b}, seed {seed}: output {k} = {x}"
                );
            }
            let mut s = v.clone();
            s.sort();
            assert_eq!(s, (0..40).collect::<Vec<_>>());
        }
    }
    Ok(())
}

#[test]
fn shuffle_first_position_is_roughly_uniform() -> Result<()> {
    // With a full buffer every element is equally likely first: 600 seeds, 3 elements,
    // expect 200 each (binomial sd ~ 11.5; the bounds are ~ 4.3 sd).
    let mut counts = [0usize; 3];
    for seed in 0..600 {
        let v = ints(&Dataset::range(3).shuffle(3, Some(seed), false))?;
        counts[v[0] as usize] += 1;
    }
    for c in counts {
        assert!((150..=250).contains(&c), "{counts:?}");
    }
    Ok(())
}

#[test]
fn pipeline_is_identical_on_one_and_many_threads() -> Result<()> {
    let run = |threads: usize| -> Result<Vec<Vec<i64>>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::invalid("test", e.to_string()))?;
        pool.install(|| {
            let ds = Dataset::range(60)
                .shuffle(16, Some(77), true)
                .map_parallel(square, AUTOTUNE)
                .batch(7, false)
                .prefetch(2);
            let mut all = Vec::new();
            for _ in 0..2 {
                all.extend(vecs(&ds)?);
            }
            Ok(all)
        })
    };
    assert_eq!(run(1)?, run(4)?);
    Ok(())
}

// ---------------------------------------------------------------- batch family

#[test]
fn batch_partial_and_drop_remainder() -> Result<()> {
    let ds = Dataset::range(7).batch(3, false);
    assert_eq!(ds.cardinality(), Some(3));
    assert_eq!(vecs(&ds)?, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    let shapes: Vec<Vec<usize>> = ds
        .iter()
        .map(|b| Ok(b?.tensor()?.shape().to_vec()))
        .collect::<Result<_>>()?;
    assert_eq!(shapes, vec![vec![3], vec![3], vec![1]]);

    let dropped = Dataset::range(7).batch(3, true);
    assert_eq!(dropped.cardinality(), Some(2));
    assert_eq!(vecs(&dropped)?, vec![vec![0, 1, 2], vec![3, 4, 5]]);
    assert_eq!(Dataset::range(6).batch(3, true).cardinality(), Some(2));
    assert!(Dataset::range(3).repeat(None).batch(2, false).is_infinite());

    let err = Dataset::range(3).batch(0, false).collect().unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
    Ok(())
}

#[test]
fn batch_stacks_through_tuples_and_dicts() -> Result<()> {
    // x[i] = [i, 10 i] (float32), y[i] = i % 2 (int64).
    let n = 5;
    let x: Vec<f32> = (0..n).flat_map(|i| [i as f32, 10.0 * i as f32]).collect();
    let y: Vec<i64> = (0..n as i64).map(|i| i % 2).collect();
    let xt = Tensor::from_vec(x.clone(), &[n, 2])?;
    let yt = t_i64(y.clone(), &[n]);
    let ds = Dataset::from_tensor_slices((xt.clone(), yt.clone()))?.batch(2, false);
    let batches = ds.collect()?;
    assert_eq!(batches.len(), 3);
    for (b, batch) in batches.iter().enumerate() {
        let parts = batch.tuple()?;
        let rows: Vec<usize> = (2 * b..(2 * b + 2).min(n)).collect();
        let ex: Vec<f32> = rows
            .iter()
            .flat_map(|&i| [x[2 * i], x[2 * i + 1]])
            .collect();
        let ey: Vec<i64> = rows.iter().map(|&i| y[i]).collect();
        assert_eq!(parts[0].tensor()?.shape(), &[rows.len(), 2]);
        assert_eq!(parts[0].tensor()?.to_vec::<f32>()?, ex);
        assert_eq!(parts[1].tensor()?.to_vec::<i64>()?, ey);
    }

    let mut d = BTreeMap::new();
    d.insert("image".to_string(), Element::Tensor(xt));
    d.insert("label".to_string(), Element::Tensor(yt));
    let b = Dataset::from_tensor_slices(Element::Dict(d))?
        .batch(4, true)
        .collect()?;
    assert_eq!(b.len(), 1);
    let dict = b[0].dict()?;
    assert_eq!(dict["image"].tensor()?.shape(), &[4, 2]);
    assert_eq!(dict["label"].tensor()?.to_vec::<i64>()?, y[..4].to_vec());
    Ok(())
}

#[test]
fn batch_shape_mismatch_names_element_and_shapes() {
    let ds = Dataset::from_iter(vec![
        int_elem(vec![1, 2]),
        int_elem(vec![3, 4]),
        int_elem(vec![5, 6, 7]),
    ])
    .batch(3, false);
    let err = ds.collect().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Shape { .. }), "{msg}");
    assert!(msg.contains("batch"), "{msg}");
    assert!(msg.contains("element 2"), "{msg}");
    assert!(msg.contains("(3,)") && msg.contains("(2,)"), "{msg}");

    // In a tuple the component is named too.
    let ds = Dataset::from_iter(vec![
        Element::Tuple(vec![int_elem(vec![1]), int_elem(vec![1, 2])]),
        Element::Tuple(vec![int_elem(vec![2]), int_elem(vec![1])]),
    ])
    .batch(2, false);
    let msg = ds.collect().unwrap_err().to_string();
    assert!(msg.contains("element 1") && msg.contains("[1]"), "{msg}");

    // Dtypes and structures must agree as well.
    let ds = Dataset::from_iter(vec![
        Element::Tensor(Tensor::scalar(1i64)),
        Element::Tensor(Tensor::scalar(1.0f32)),
    ])
    .batch(2, false);
    assert!(matches!(ds.collect().unwrap_err(), Error::DType { .. }));
    let ds = Dataset::from_iter(vec![
        Element::Tensor(Tensor::scalar(1i64)),
        Element::Tuple(vec![Element::Tensor(Tensor::scalar(1i64))]),
    ])
    .batch(2, false);
    let msg = ds.collect().unwrap_err().to_string();
    assert!(
        msg.contains("element 1") && msg.contains("structure"),
        "{msg}"
    );
}

#[test]
fn padded_batch_pads_to_longest_or_given_shape() -> Result<()> {
    let seqs: Vec<Vec<i64>> = vec![
        vec![1],
        vec![2, 3, 4],
        vec![5, 6],
        vec![7, 8, 9, 10],
        vec![11],
    ];
    let elems: Vec<Element> = seqs.iter().map(|s| int_elem(s.clone())).collect();
    // Reference: pad each batch with `pad` to `len`.
    let reference = |batch: &[Vec<i64>], len: usize, pad: i64| -> Vec<i64> {
        batch
            .iter()
            .flat_map(|s| {
                let mut r = s.clone();
                r.resize(len, pad);
                r
            })
            .collect()
    };
    let ds = Dataset::from_iter(elems.clone()).padded_batch(2, None, 0.0, false);
    assert_eq!(ds.cardinality(), Some(3));
    let out = ds.collect()?;
    for (b, chunk) in seqs.chunks(2).enumerate() {
        let len = chunk.iter().map(Vec::len).max().unwrap_or(0);
        let t = out[b].tensor()?;
        assert_eq!(t.shape(), &[chunk.len(), len]);
        assert_eq!(t.to_vec::<i64>()?, reference(chunk, len, 0));
    }

    let fixed = Dataset::from_iter(elems.clone())
        .padded_batch(2, Some(vec![vec![Some(6)]]), -1.0, true)
        .collect()?;
    assert_eq!(fixed.len(), 2);
    for (b, chunk) in seqs.chunks(2).take(2).enumerate() {
        assert_eq!(fixed[b].tensor()?.shape(), &[2, 6]);
        assert_eq!(fixed[b].tensor()?.to_vec::<i64>()?, reference(chunk, 6, -1));
    }

    // A tuple (sequence, label): the scalar label's padded shape is [].
    let pairs: Vec<Element> = seqs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Element::Tuple(vec![
                int_elem(s.clone()),
                Element::Tensor(Tensor::scalar(i as i64)),
            ])
        })
        .collect();
    let out = Dataset::from_iter(pairs)
        .padded_batch(3, Some(vec![vec![None], vec![]]), 0.0, false)
        .collect()?;
    assert_eq!(
        out[0].tuple()?[0].tensor()?.to_vec::<i64>()?,
        reference(&seqs[..3], 3, 0)
    );
    assert_eq!(out[0].tuple()?[1].tensor()?.to_vec::<i64>()?, vec![0, 1, 2]);
    assert_eq!(
        out[1].tuple()?[0].tensor()?.to_vec::<i64>()?,
        reference(&seqs[3..], 4, 0)
    );
    Ok(())
}

#[test]
fn padded_batch_errors() {
    let elems = vec![int_elem(vec![1, 2, 3]), int_elem(vec![1])];
    let msg = Dataset::from_iter(elems.clone())
        .padded_batch(2, Some(vec![vec![Some(2)]]), 0.0, false)
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("padded_batch") && msg.contains("element 0") && msg.contains("(3,)"),
        "{msg}"
    );
    let msg = Dataset::from_iter(elems.clone())
        .padded_batch(2, Some(vec![vec![None], vec![None]]), 0.0, false)
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("2 shapes") && msg.contains("1 tensors"),
        "{msg}"
    );
    let ranks = vec![
        int_elem(vec![1, 2]),
        Element::Tensor(t_i64(vec![1, 2], &[1, 2])),
    ];
    let msg = Dataset::from_iter(ranks)
        .padded_batch(2, None, 0.0, false)
        .collect()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("rank"), "{msg}");
}

#[test]
fn unbatch_inverts_batch() -> Result<()> {
    let x = t_i64((0..12).collect(), &[6, 2]);
    let y = t_i64((100..106).collect(), &[6]);
    let ds = Dataset::from_tensor_slices((x, y))?
        .batch(4, false)
        .unbatch();
    assert_eq!(ds.cardinality(), None);
    let rows = ds.collect()?;
    assert_eq!(rows.len(), 6);
    for (i, r) in rows.iter().enumerate() {
        let p = r.tuple()?;
        let i = i as i64;
        assert_eq!(p[0].tensor()?.to_vec::<i64>()?, vec![2 * i, 2 * i + 1]);
        assert_eq!(p[1].tensor()?.item::<i64>()?, 100 + i);
    }
    let bad = Dataset::from_iter(vec![Element::Tuple(vec![
        int_elem(vec![1, 2]),
        int_elem(vec![1]),
    ])]);
    assert!(matches!(
        bad.unbatch().collect().unwrap_err(),
        Error::Shape { .. }
    ));
    let scalar = Dataset::range(2).unbatch();
    assert!(scalar.collect().is_err());
    Ok(())
}

// ---------------------------------------------------------------- combining

#[test]
fn repeat_take_skip() -> Result<()> {
    assert_eq!(
        ints(&Dataset::range(3).repeat(Some(2)))?,
        vec![0, 1, 2, 0, 1, 2]
    );
    assert_eq!(Dataset::range(3).repeat(Some(2)).cardinality(), Some(6));
    assert_eq!(ints(&Dataset::range(3).repeat(Some(0)))?, Vec::<i64>::new());
    let forever = Dataset::range(3).repeat(None);
    assert!(forever.is_infinite());
    assert_eq!(forever.cardinality(), None);
    assert!(forever.collect().is_err());
    let expected: Vec<i64> = (0..10).map(|i| i % 3).collect();
    assert_eq!(ints(&forever.take(10))?, expected);
    assert_eq!(forever.take(10).cardinality(), Some(10));
    // Repeating an empty dataset forever ends.
    assert_eq!(ints(&Dataset::range(0).repeat(None))?, Vec::<i64>::new());

    assert_eq!(ints(&Dataset::range(5).take(2))?, vec![0, 1]);
    assert_eq!(Dataset::range(5).take(9).cardinality(), Some(5));
    assert_eq!(ints(&Dataset::range(5).skip(2))?, vec![2, 3, 4]);
    assert_eq!(Dataset::range(5).skip(9).cardinality(), Some(0));
    assert_eq!(ints(&Dataset::range(5).skip(9))?, Vec::<i64>::new());
    assert!(forever.skip(4).is_infinite());
    Ok(())
}

#[test]
fn zip_concatenate_enumerate() -> Result<()> {
    let squares = Dataset::range(10).map(square);
    let z = Dataset::zip(&[Dataset::range(4), squares.clone()]);
    assert_eq!(z.cardinality(), Some(4));
    let pairs: Vec<(i64, i64)> = z
        .iter()
        .map(|e| {
            let e = e?;
            let t = e.tuple()?;
            Ok((t[0].tensor()?.item()?, t[1].tensor()?.item()?))
        })
        .collect::<Result<_>>()?;
    assert_eq!(pairs, (0..4).map(|i| (i, i * i)).collect::<Vec<_>>());
    assert_eq!(
        Dataset::zip(&[Dataset::range(3), Dataset::range(2).repeat(None)]).cardinality(),
        Some(3)
    );
    assert!(Dataset::zip(&[]).collect().is_err());

    let c = Dataset::range(3).concatenate(&Dataset::range(2).map(square));
    assert_eq!(c.cardinality(), Some(5));
    assert_eq!(ints(&c)?, vec![0, 1, 2, 0, 1]);
    assert!(Dataset::range(1)
        .concatenate(&Dataset::range(1).repeat(None))
        .is_infinite());

    let e = Dataset::range(4).map(square).enumerate(5);
    assert_eq!(e.cardinality(), Some(4));
    let got: Vec<(i64, i64)> = e
        .iter()
        .map(|x| {
            let x = x?;
            let t = x.tuple()?;
            assert_eq!(t[0].tensor()?.dtype(), DType::I64);
            Ok((t[0].tensor()?.item()?, t[1].tensor()?.item()?))
        })
        .collect::<Result<_>>()?;
    assert_eq!(got, (0..4).map(|i| (i + 5, i * i)).collect::<Vec<_>>());
    Ok(())
}

// ---------------------------------------------------------------- prefetch

#[test]
fn prefetch_yields_the_same_sequence() -> Result<()> {
    let base = Dataset::range(100)
        .shuffle(30, Some(4), false)
        .batch(8, false);
    for buf in [0, 1, 3, AUTOTUNE] {
        let pf = base.prefetch(buf);
        assert_eq!(pf.cardinality(), Some(13));
        assert_eq!(vecs(&pf)?, vecs(&base)?, "buffer {buf}");
    }
    Ok(())
}

#[test]
fn prefetch_propagates_errors_in_order() {
    let ds = Dataset::range(6)
        .map(|e| {
            if e.tensor()?.item::<i64>()? == 3 {
                Err(Error::invalid("f", "boom at three"))
            } else {
                Ok(e)
            }
        })
        .prefetch(4);
    let out: Vec<Result<Element>> = ds.iter().collect();
    assert_eq!(out.len(), 6);
    for (i, r) in out.iter().enumerate() {
        match r {
            Ok(e) => assert_eq!(
                e.tensor().and_then(|t| t.item::<i64>()).ok(),
                Some(i as i64)
            ),
            Err(err) => {
                assert_eq!(i, 3);
                assert!(err.to_string().contains("boom at three"));
            }
        }
    }
}

#[test]
fn dropping_a_prefetch_iterator_stops_its_thread() -> Result<()> {
    let produced = Arc::new(AtomicUsize::new(0));
    let p = produced.clone();
    let ds = Dataset::range(1000)
        .repeat(None)
        .map(move |e| {
            p.fetch_add(1, Ordering::SeqCst);
            Ok(e)
        })
        .prefetch(2);
    let mut it = ds.iter();
    for i in 0..3 {
        assert_eq!(
            it.next().map(|e| e.and_then(|e| e.tensor()?.item::<i64>())),
            Some(Ok(i))
        );
    }
    drop(it);
    let after_drop = produced.load(Ordering::SeqCst);
    // 3 consumed + at most 2 buffered + 1 blocked in send.
    assert!(after_drop <= 6, "{after_drop}");
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        produced.load(Ordering::SeqCst),
        after_drop,
        "the thread kept running"
    );
    Ok(())
}

// ---------------------------------------------------------------- cache

fn counting_map(ds: &Dataset, calls: &Arc<AtomicUsize>) -> Dataset {
    let c = calls.clone();
    ds.map(move |e| {
        c.fetch_add(1, Ordering::SeqCst);
        square(e)
    })
}

#[test]
fn memory_cache_runs_the_map_once() -> Result<()> {
    let calls = Arc::new(AtomicUsize::new(0));
    let ds = counting_map(&Dataset::range(5), &calls).cache();
    assert_eq!(ds.cardinality(), Some(5));
    // An abandoned pass keeps nothing.
    let mut it = ds.iter();
    it.next();
    it.next();
    drop(it);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    for _ in 0..3 {
        assert_eq!(ints(&ds)?, vec![0, 1, 4, 9, 16]);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2 + 5);
    // A cache before a reshuffling shuffle: the shuffle still changes per epoch.
    let sh = ds.shuffle(5, Some(1), true);
    let (a, b) = (ints(&sh)?, ints(&sh)?);
    assert_eq!(calls.load(Ordering::SeqCst), 7);
    let (mut sa, mut sb) = (a.clone(), b.clone());
    sa.sort();
    sb.sort();
    assert_eq!(sa, vec![0, 1, 4, 9, 16]);
    assert_eq!(sa, sb);
    Ok(())
}

#[test]
fn memory_cache_is_not_filled_by_a_failing_pass() -> Result<()> {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let ds = Dataset::range(3)
        .map(move |e| {
            // The first pass fails on its last element; later passes succeed.
            if c.fetch_add(1, Ordering::SeqCst) == 2 {
                Err(Error::invalid("f", "transient"))
            } else {
                Ok(e)
            }
        })
        .cache();
    assert!(ds.collect().is_err());
    assert_eq!(ints(&ds)?, vec![0, 1, 2]);
    assert_eq!(ints(&ds)?, vec![0, 1, 2]);
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    Ok(())
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferroflow-data-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// An element with one tensor of every dtype, nested in a tuple and a dict; values depend on `i`.
fn all_dtypes(i: usize) -> Result<Element> {
    let f = i as f64;
    let mut d = BTreeMap::new();
    d.insert(
        "f32".to_string(),
        Element::Tensor(Tensor::from_vec(vec![f as f32 + 0.5, -1.25], &[2])?),
    );
    d.insert(
        "f64".to_string(),
        Element::Tensor(Tensor::from_vec(vec![f / 3.0], &[1, 1])?),
    );
    d.insert(
        "f16".to_string(),
        Element::Tensor(Tensor::from_vec(vec![f16::from_f64(f + 0.25)], &[1])?),
    );
    d.insert(
        "bf16".to_string(),
        Element::Tensor(Tensor::from_vec(vec![bf16::from_f64(-f)], &[1])?),
    );
    d.insert(
        "i32".to_string(),
        Element::Tensor(Tensor::from_vec(vec![i as i32 * -7, 3], &[2])?),
    );
    let tuple = Element::Tuple(vec![
        Element::Tensor(Tensor::scalar(i as i64 * 1_000_000_007)),
        Element::Tensor(Tensor::from_vec(vec![i as u8, 255, 0], &[3])?),
        Element::Tensor(Tensor::from_vec(vec![i.is_multiple_of(2), true], &[2, 1])?),
        Element::Tensor(Tensor::from_vec(Vec::<f32>::new(), &[0, 3])?),
    ]);
    d.insert("z_tuple".to_string(), tuple);
    Ok(Element::Dict(d))
}

/// Structure, dtypes, shapes and values (as f64) of an element, for comparisons.
fn describe(e: &Element) -> String {
    match e {
        Element::Tensor(t) => format!("{}{:?}{:?}", t.dtype(), t.shape(), t.to_f64_vec()),
        Element::Tuple(v) => format!(
            "({})",
            v.iter().map(describe).collect::<Vec<_>>().join(", ")
        ),
        Element::Dict(d) => format!(
            "{{{}}}",
            d.iter()
                .map(|(k, v)| format!("{k}: {}", describe(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[test]
fn file_cache_round_trips_every_dtype_and_replays_from_disk() -> Result<()> {
    let path = temp_path("round_trip.ffcache");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let make = move || {
        let c = c.clone();
        Dataset::range(4).map(move |e| {
            c.fetch_add(1, Ordering::SeqCst);
            all_dtypes(e.tensor()?.item::<i64>()? as usize)
        })
    };
    let expected: Vec<String> = (0..4)
        .map(|i| all_dtypes(i).map(|e| describe(&e)))
        .collect::<Result<_>>()?;

    let ds = make().cache_file(&path);
    assert_eq!(ds.cardinality(), Some(4));
    let first: Vec<String> = ds.collect()?.iter().map(describe).collect();
    assert_eq!(first, expected);
    assert!(path.exists());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let second: Vec<String> = ds.collect()?.iter().map(describe).collect();
    assert_eq!(second, expected);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "the second pass reads the file"
    );

    // A new pipeline (a later run) reuses the file.
    let third: Vec<String> = make()
        .cache_file(&path)
        .collect()?
        .iter()
        .map(describe)
        .collect();
    assert_eq!(third, expected);
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    // No temporary files are left next to the cache.
    let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::invalid("test", e.to_string()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("round_trip.ffcache.tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_file(&path).ok();
    Ok(())
}

#[test]
fn file_cache_partial_pass_writes_nothing() -> Result<()> {
    let path = temp_path("partial.ffcache");
    let ds = Dataset::range(10).cache_file(&path);
    let mut it = ds.iter();
    it.next();
    drop(it);
    assert!(!path.exists());
    let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let tmp = std::fs::read_dir(&dir)
        .map_err(|e| Error::invalid("test", e.to_string()))?
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("partial.ffcache.tmp")
        });
    assert!(!tmp, "temporary file left behind");
    // A failing pass writes nothing either.
    let failing = Dataset::range(3)
        .map(|e| {
            if e.tensor()?.item::<i64>()? == 1 {
                Err(Error::invalid("f", "nope"))
            } else {
                Ok(e)
            }
        })
        .cache_file(&path);
    assert!(failing.collect().is_err());
    assert!(!path.exists());
    // An unwritable location is an error, not a panic.
    let bad = Dataset::range(2).cache_file(temp_path("no-such-dir").join("x.ffcache"));
    let msg = bad.collect().unwrap_err().to_string();
    assert!(msg.contains("no-such-dir"), "{msg}");
    Ok(())
}

#[test]
fn truncated_or_corrupt_cache_file_is_an_error() -> Result<()> {
    let path = temp_path("corrupt.ffcache");
    let elements: Vec<Element> = (0..3).map(all_dtypes).collect::<Result<_>>()?;
    Dataset::from_iter(elements.clone())
        .cache_file(&path)
        .collect()?;
    let bytes = std::fs::read(&path).map_err(|e| Error::invalid("test", e.to_string()))?;
    let write =
        |b: &[u8]| std::fs::write(&path, b).map_err(|e| Error::invalid("test", e.to_string()));
    let read_back = || Dataset::range(1).cache_file(&path).collect();

    // Truncated anywhere: an error naming the file, before any element is produced.
    for cut in [bytes.len() - 1, bytes.len() / 2, 13, 5, 0] {
        write(&bytes[..cut])?;
        let mut it = Dataset::range(1).cache_file(&path).iter();
        let first = it.next();
        let msg = match first {
            Some(Err(e)) => e.to_string(),
            other => panic!("cut at {cut}: expected an error, got {other:?}"),
        };
        assert!(msg.contains("corrupt.ffcache"), "{msg}");
    }

    // Not a cache file at all.
    write(b"this is definitely not a ferroflow cache file, just text")?;
    let msg = read_back().unwrap_err().to_string();
    assert!(msg.contains("magic"), "{msg}");

    // A damaged header inside the file: every byte flipped in turn gives an error or (for
    // payload bytes) different values, never a panic.
    for pos in 12..bytes.len() - 17 {
        let mut b = bytes.clone();
        b[pos] ^= 0xA5;
        write(&b)?;
        let _ = read_back();
    }
    // A dtype code out of range is reported with its byte offset.
    let mut b = bytes.clone();
    // Layout: header (12), record marker, dict tag, count (4), key len (4), "bf16", tensor tag,
    // then the dtype code.
    let dtype_pos = 12 + 1 + 1 + 4 + 4 + 4 + 1;
    assert_eq!(b[dtype_pos], 3, "bf16's code");
    b[dtype_pos] = 99;
    write(&b)?;
    let msg = read_back().unwrap_err().to_string();
    assert!(
        msg.contains("unknown dtype code 99") && msg.contains("element 0"),
        "{msg}"
    );
    std::fs::remove_file(&path).ok();
    Ok(())
}

// ---------------------------------------------------------------- elements

#[test]
fn element_structures_and_unpacking() -> Result<()> {
    let x = Tensor::scalar(1.0f32);
    let y = Tensor::scalar(2i64);
    let w = Tensor::scalar(0.5f32);
    let (ex, ey, ew) =
        Element::from((x.clone(), y.clone(), w.clone())).unpack_x_y_sample_weight()?;
    assert_eq!(ex.tensor()?.item::<f32>()?, 1.0);
    assert_eq!(
        ey.map(|e| e.tensor().and_then(|t| t.item::<i64>()))
            .transpose()?,
        Some(2)
    );
    assert_eq!(
        ew.map(|e| e.tensor().and_then(|t| t.item::<f32>()))
            .transpose()?,
        Some(0.5)
    );
    let (_, ey, ew) = Element::Tensor(x.clone()).unpack_x_y_sample_weight()?;
    assert!(ey.is_none() && ew.is_none());
    let (_, ey, _) = Element::Tuple(vec![Element::Tensor(x.clone())]).unpack_x_y_sample_weight()?;
    assert!(ey.is_none());
    let four = Element::Tuple(vec![Element::Tensor(x.clone()); 4]);
    assert!(four.unpack_x_y_sample_weight().is_err());

    // Dicts with different keys cannot be stacked.
    let d = |k: &str| {
        let mut m = BTreeMap::new();
        m.insert(k.to_string(), Element::Tensor(x.clone()));
        Element::Dict(m)
    };
    let msg = Element::stack("batch", &[d("a"), d("b")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("element 1") && msg.contains("keys [a]"),
        "{msg}"
    );
    assert!(Element::stack("batch", &[]).is_err());

    // from_tensors is one element; collect refuses infinite datasets.
    let one = Dataset::from_tensors(t_i64(vec![1, 2, 3], &[3]));
    assert_eq!(one.cardinality(), Some(1));
    assert_eq!(vecs(&one)?, vec![vec![1, 2, 3]]);
    let msg = one.repeat(None).collect().unwrap_err().to_string();
    assert!(msg.contains("infinite"), "{msg}");
    Ok(())
}

#[test]
fn a_dataset_reference_is_iterable() -> Result<()> {
    let ds = Dataset::range(3);
    let mut sum = 0;
    for e in &ds {
        sum += e?.tensor()?.item::<i64>()?;
    }
    assert_eq!(sum, 3);
    Ok(())
}

#[test]
fn a_panic_on_the_prefetch_thread_becomes_an_error() {
    let ds = Dataset::range(3)
        .map(|e| {
            if e.tensor()?.item::<i64>()? == 1 {
                panic!("deliberate panic in a map function");
            }
            Ok(e)
        })
        .prefetch(1);
    let out: Vec<Result<Element>> = ds.iter().collect();
    assert_eq!(out.len(), 2);
    assert!(out[0].is_ok());
    let msg = out[1].as_ref().unwrap_err().to_string();
    assert!(msg.contains("panicked"), "{msg}");
}
