//! `Variable::update_elements`: in place when the value is not shared, a copy otherwise.

use ferroflow_core::{DType, Tensor, Variable};

fn ptr_of(v: &Variable) -> usize {
    v.value().data::<f32>().unwrap().as_ptr() as usize
}

#[test]
fn unshared_values_are_updated_in_their_own_buffer() {
    let w = Variable::new(Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap(), "w");
    let m = Variable::new(Tensor::from_vec(vec![0.5f32, 0.5, 0.5], &[3]).unwrap(), "m");
    let (pw, pm) = (ptr_of(&w), ptr_of(&m));
    Variable::update_elements::<f32>(&[&w, &m], |vs| {
        let (a, b) = vs.split_at_mut(1);
        for (x, y) in a[0].iter_mut().zip(b[0].iter_mut()) {
            *y *= 2.0; // m = 1
            *x -= *y; // w - 1
        }
    })
    .unwrap();
    assert_eq!(w.value().to_vec::<f32>().unwrap(), vec![0.0, 1.0, 2.0]);
    assert_eq!(m.value().to_vec::<f32>().unwrap(), vec![1.0, 1.0, 1.0]);
    assert_eq!(w.shape(), vec![3]);
    // Same buffers: no copy was made.
    assert_eq!(ptr_of(&w), pw);
    assert_eq!(ptr_of(&m), pm);
}

#[test]
fn a_live_reader_keeps_the_old_value() {
    let w = Variable::new(
        Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap(),
        "w",
    );
    let old = w.value();
    Variable::update_elements::<f32>(&[&w], |vs| vs[0].iter_mut().for_each(|x| *x += 10.0))
        .unwrap();
    assert_eq!(old.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(
        w.value().to_vec::<f32>().unwrap(),
        vec![11.0, 12.0, 13.0, 14.0]
    );
    assert_eq!(w.shape(), vec![2, 2]);
}

#[test]
fn bad_calls_are_errors_and_change_nothing() {
    let w = Variable::new(Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap(), "w");
    // Twice the same variable.
    let e = Variable::update_elements::<f32>(&[&w, &w], |_| {}).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    // Wrong dtype.
    let e = Variable::update_elements::<f64>(&[&w], |_| {}).unwrap_err();
    assert!(e.to_string().contains("does not hold"), "{e}");
    assert_eq!(w.value().to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    assert_eq!(w.dtype(), DType::F32);
    // A resized vector: error, variable reset to zeros of its shape.
    let e = Variable::update_elements::<f32>(&[&w], |vs| vs[0].push(9.0)).unwrap_err();
    assert!(e.to_string().contains("3 elements"), "{e}");
    assert_eq!(w.value().to_vec::<f32>().unwrap(), vec![0.0, 0.0]);
}
