//! N-dimensional boxes of elements in C order, and copies between them.

/// An in-memory block of elements in C order.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Fixed-size elements as little-endian bytes.
    Fixed(Vec<u8>),
    /// Variable-length strings.
    Strings(Vec<String>),
}

/// A position inside an array: the array's shape and a starting index.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// Shape of the whole array.
    pub shape: &'a [u64],
    /// First index of the box.
    pub start: &'a [u64],
}

/// Copies a box of `count` elements from `src` (at `from`) into `dst` (at `to`). Each
/// element is `elem` items of `T` (bytes per element for raw data, 1 for strings).
pub fn copy_box<T: Clone>(src: &[T], from: At<'_>, dst: &mut [T], to: At<'_>, count: &[u64], elem: usize) {
    let (src_shape, src_start, dst_shape, dst_start) = (from.shape, from.start, to.shape, to.start);
    let ndim = count.len();
    if count.contains(&0) {
        return;
    }
    if ndim == 0 {
        dst[..elem].clone_from_slice(&src[..elem]);
        return;
    }
    let src_strides = strides(src_shape);
    let dst_strides = strides(dst_shape);
    let run = count[ndim - 1] as usize * elem;
    let mut idx = vec![0u64; ndim - 1];
    loop {
        let mut s = src_start[ndim - 1];
        let mut d = dst_start[ndim - 1];
        for k in 0..ndim - 1 {
            s += (src_start[k] + idx[k]) * src_strides[k];
            d += (dst_start[k] + idx[k]) * dst_strides[k];
        }
        let (s, d) = (s as usize * elem, d as usize * elem);
        dst[d..d + run].clone_from_slice(&src[s..s + run]);
        // Advance the odometer over the outer dimensions.
        let mut k = ndim - 1;
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < count[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// Element strides of a C-order array.
pub fn strides(shape: &[u64]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// Number of elements in a box.
pub fn volume(shape: &[u64]) -> u64 {
    shape.iter().product()
}

/// Every index of a grid of `counts` cells, in C order.
pub fn grid_indices(counts: &[u64]) -> Vec<Vec<u64>> {
    let total = volume(counts);
    let mut out = Vec::with_capacity(total as usize);
    if total == 0 {
        return out;
    }
    let mut idx = vec![0u64; counts.len()];
    for _ in 0..total {
        out.push(idx.clone());
        for k in (0..counts.len()).rev() {
            idx[k] += 1;
            if idx[k] < counts[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_an_inner_box() {
        // 3x4 source, take rows 1..3, cols 1..3 into a 2x2 destination.
        let src: Vec<u8> = (0..12).collect();
        let mut dst = vec![0u8; 4];
        let at = |shape, start| At { shape, start };
        copy_box(&src, at(&[3, 4], &[1, 1]), &mut dst, at(&[2, 2], &[0, 0]), &[2, 2], 1);
        assert_eq!(dst, vec![5, 6, 9, 10]);
    }

    #[test]
    fn copies_multibyte_elements_and_scalars() {
        let src: Vec<u8> = (0..8).collect(); // 2x2 u16
        let mut dst = vec![0u8; 8];
        let at = |shape, start| At { shape, start };
        copy_box(&src, at(&[2, 2], &[0, 1]), &mut dst, at(&[2, 2], &[1, 0]), &[1, 1], 2);
        assert_eq!(dst, vec![0, 0, 0, 0, 2, 3, 0, 0]);
        let mut one = vec![0u8; 4];
        copy_box(&[1u8, 2, 3, 4], at(&[], &[]), &mut one, at(&[], &[]), &[], 4);
        assert_eq!(one, vec![1, 2, 3, 4]);
    }

    #[test]
    fn grid_indices_in_c_order() {
        assert_eq!(
            grid_indices(&[2, 2]),
            vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]
        );
        assert_eq!(grid_indices(&[]), vec![Vec::<u64>::new()]);
        assert!(grid_indices(&[0, 3]).is_empty());
    }
}
