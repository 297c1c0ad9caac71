//! CF packing (`scale_factor`, `add_offset`) and masking (`_FillValue`,
//! `missing_value`), decoded exactly the way xarray decodes them.
//!
//! nc2zarr copies packed values raw whenever every file packs a variable the same way.
//! When files differ, raw values from different files would mean different things
//! under one set of attributes, so such a variable is unpacked instead: each file's
//! values are decoded with that file's own attributes, in the floating-point precision
//! xarray picks, and the variable is stored as floats with NaN for missing values.

use crate::model::{AttrValue, Attrs, DType, Decoding, Factor, Scalar, attr};

/// The attributes that change what a stored number means.
pub const CODING_ATTRS: [&str; 4] = ["scale_factor", "add_offset", "_FillValue", "missing_value"];

impl Decoding {
    /// What xarray does to a variable of type `raw` with attributes `attrs`.
    pub fn of(raw: DType, attrs: &Attrs) -> Decoding {
        let factor = |k: &str| {
            attr(attrs, k).and_then(|a| match a {
                AttrValue::Numbers(t, v) if !v.is_empty() => Some(Factor {
                    value: v[0].as_f64(),
                    single: *t == DType::F32,
                }),
                _ => None,
            })
        };
        let (scale, offset) = (factor("scale_factor"), factor("add_offset"));
        let mut missing = Vec::new();
        let mut has_fill_attr = false;
        for k in ["missing_value", "_FillValue"] {
            if let Some(AttrValue::Numbers(_, v)) = attr(attrs, k) {
                let values: Vec<f64> = v.iter().map(|s| s.as_f64()).filter(|x| !x.is_nan()).collect();
                // xarray drops an all-NaN fill of an integer variable entirely.
                if !values.is_empty() || raw.is_float() {
                    has_fill_attr = true;
                }
                missing.extend(values);
            }
        }
        let dtype = if scale.is_some() || offset.is_some() {
            packed_float_type(raw, scale, offset)
        } else if has_fill_attr && !missing.is_empty() {
            promote_for_missing(raw)
        } else {
            raw
        };
        if !has_fill_attr {
            missing.clear();
        }
        Decoding {
            missing,
            scale,
            offset,
            dtype,
        }
    }

    /// Decodes one raw value (as `f64`) into this file's decoded type (as `f64`).
    pub fn decode(&self, raw: f64) -> f64 {
        let single = self.dtype == DType::F32;
        let mut x = if single { f64::from(raw as f32) } else { raw };
        if self.missing.contains(&x) {
            return f64::NAN;
        }
        if let Some(s) = self.scale {
            x = apply(x, single, s, true);
        }
        if let Some(o) = self.offset {
            x = apply(x, single, o, false);
        }
        x
    }
}

/// numpy's in-place `data *= factor` / `data += factor`: single-precision arithmetic
/// when both are `float32`, otherwise double precision rounded back to the array's type.
fn apply(x: f64, single: bool, f: Factor, multiply: bool) -> f64 {
    match (single, f.single) {
        (true, true) => {
            let (a, b) = (x as f32, f.value as f32);
            f64::from(if multiply { a * b } else { a + b })
        }
        (true, false) => f64::from((if multiply { x * f.value } else { x + f.value }) as f32),
        _ => {
            if multiply {
                x * f.value
            } else {
                x + f.value
            }
        }
    }
}

/// xarray's `_choose_float_dtype` for a packed variable.
fn packed_float_type(raw: DType, scale: Option<Factor>, offset: Option<Factor>) -> DType {
    let single = |f: Option<Factor>| f.map(|f| f.single);
    match (single(scale), single(offset)) {
        // CF-conforming: both given, of one float type; int32 needs float64.
        (Some(a), Some(b)) if a == b => {
            if a && !(raw.is_integer() && raw.size() == Some(4)) {
                DType::F32
            } else {
                DType::F64
            }
        }
        // Any offset otherwise: float64, to be safe.
        (_, Some(_)) => DType::F64,
        (Some(true), None) => DType::F32,
        _ => DType::F64,
    }
}

/// xarray's `maybe_promote`: the type that can hold NaN for masked values.
fn promote_for_missing(raw: DType) -> DType {
    match raw {
        DType::F32 | DType::F64 => raw,
        _ if raw.size().is_some_and(|s| s <= 2) => DType::F32,
        _ => DType::F64,
    }
}

/// The type values of several files take once concatenated (numpy's promotion).
pub fn common_type(types: &[DType]) -> DType {
    types.iter().copied().reduce(promote).unwrap_or(DType::F64)
}

/// numpy's `result_type` of two numeric types.
pub fn promote(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    let size = |t: DType| t.size().unwrap_or(8);
    let signed = |t: DType| matches!(t, I8 | I16 | I32 | I64);
    match (a.is_float(), b.is_float()) {
        (true, true) => F64,
        (true, false) | (false, true) => {
            let (f, i) = if a.is_float() { (a, b) } else { (b, a) };
            if f == F32 && size(i) <= 2 { F32 } else { F64 }
        }
        (false, false) => {
            let int = |signed: bool, bytes: usize| match (signed, bytes) {
                (true, 1) => I8,
                (true, 2) => I16,
                (true, 4) => I32,
                (true, _) => I64,
                (false, 1) => U8,
                (false, 2) => U16,
                (false, 4) => U32,
                (false, _) => U64,
            };
            match (signed(a), signed(b)) {
                (true, true) | (false, false) => int(signed(a), size(a).max(size(b))),
                _ => {
                    let (s, u) = if signed(a) { (a, b) } else { (b, a) };
                    if size(s) > size(u) {
                        s
                    } else if size(u) < 8 {
                        int(true, 2 * size(u))
                    } else {
                        F64
                    }
                }
            }
        }
    }
}

/// Decodes `buf` (raw values of type `raw`, native byte order) into little-endian
/// values of type `out`.
pub fn decode_buffer(buf: &[u8], raw: DType, decoding: &Decoding, out: DType) -> Vec<u8> {
    let size = raw.size().expect("numeric");
    let mut bytes = Vec::with_capacity(buf.len() / size * out.size().expect("numeric"));
    for b in buf.chunks_exact(size) {
        let x = decoding.decode(Scalar::from_ne_bytes(raw, b).as_f64());
        bytes.extend(Scalar::F(x).to_le_bytes(out));
    }
    bytes
}

/// A re-encoding of decoded values (`x * scale + offset`, e.g. time into other units) as
/// the re-encoding of the raw values it amounts to under the packing in `attrs`
/// (`scale_factor`, `add_offset`): raw values stay packed with the same attributes and
/// still decode to the re-encoded values.
pub fn on_packed((scale, offset): (f64, f64), attrs: &Attrs) -> (f64, f64) {
    let number = |k: &str| attr(attrs, k).and_then(AttrValue::as_scalar).map(Scalar::as_f64);
    let factor = number("scale_factor").filter(|f| *f != 0.0).unwrap_or(1.0);
    let add = number("add_offset").unwrap_or(0.0);
    (scale, (add * (scale - 1.0) + offset) / factor)
}

/// The coding attributes among `attrs`.
pub fn coding_attrs(attrs: &Attrs) -> Attrs {
    attrs
        .iter()
        .filter(|(k, _)| CODING_ATTRS.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// True when two sets of coding attributes hold the same numbers (types aside: a
/// store's JSON attributes keep no single-precision types), NaN equal to NaN.
pub fn same_coding(a: &Attrs, b: &Attrs) -> bool {
    let numbers = |v: &AttrValue| match v {
        AttrValue::Numbers(_, n) => Some(n.iter().map(|s| s.as_f64()).collect::<Vec<f64>>()),
        _ => None,
    };
    a.len() == b.len()
        && a.iter().all(|(k, x)| {
            let (Some(x), Some(y)) = (numbers(x), attr(b, k).and_then(numbers)) else {
                return false;
            };
            x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
        })
}

/// The coding attributes of a variable, for messages: `scale_factor=0.1, add_offset=5`.
pub fn describe(attrs: &Attrs) -> String {
    let parts: Vec<String> = CODING_ATTRS
        .iter()
        .filter_map(|k| attr(attrs, k).map(|v| format!("{k}={}", v.display())))
        .collect();
    if parts.is_empty() {
        "no packing or fill attributes".into()
    } else {
        parts.join(", ")
    }
}

/// `x * scale + offset` (a value re-encoded into other units), and whether it is a whole
/// number: units that divide evenly (144 hours as 6 days) come out a rounding error away
/// from one, and no more, and are then rounded to it.
pub fn re_encode(x: f64, (scale, offset): (f64, f64)) -> (f64, bool) {
    let y = x * scale + offset;
    let rounding = 8.0 * f64::EPSILON * (x * scale).abs().max(offset.abs()).max(1.0);
    match (y - y.round()).abs() <= rounding {
        true => (y.round(), true),
        false => (y, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, DType, f64)]) -> Attrs {
        list.iter()
            .map(|(k, t, v)| (k.to_string(), AttrValue::Numbers(*t, vec![Scalar::F(*v)])))
            .collect()
    }

    #[test]
    fn float_type_follows_xarray() {
        let f32s = attrs(&[("scale_factor", DType::F32, 0.5), ("add_offset", DType::F32, 1.0)]);
        let f64s = attrs(&[("scale_factor", DType::F64, 0.5), ("add_offset", DType::F64, 1.0)]);
        assert_eq!(Decoding::of(DType::I16, &f32s).dtype, DType::F32);
        assert_eq!(Decoding::of(DType::I32, &f32s).dtype, DType::F64);
        assert_eq!(Decoding::of(DType::I16, &f64s).dtype, DType::F64);
        let scale_only = attrs(&[("scale_factor", DType::F32, 0.5)]);
        assert_eq!(Decoding::of(DType::I16, &scale_only).dtype, DType::F32);
        let mixed = attrs(&[("scale_factor", DType::F32, 0.5), ("add_offset", DType::F64, 1.0)]);
        assert_eq!(Decoding::of(DType::I16, &mixed).dtype, DType::F64);
        let fill = vec![(
            "_FillValue".to_string(),
            AttrValue::Numbers(DType::I16, vec![Scalar::I(-1)]),
        )];
        assert_eq!(Decoding::of(DType::I16, &fill).dtype, DType::F32);
        assert_eq!(Decoding::of(DType::I32, &fill).dtype, DType::F64);
        let none = Decoding::of(DType::I16, &Vec::new());
        assert!(none.missing.is_empty() && none.scale.is_none() && none.offset.is_none());
        assert_eq!(none.dtype, DType::I16);
    }

    #[test]
    fn decodes_masks_and_rounds_like_numpy() {
        let a = vec![
            (
                "scale_factor".to_string(),
                AttrValue::Numbers(DType::F64, vec![Scalar::F(0.0123456789)]),
            ),
            (
                "_FillValue".to_string(),
                AttrValue::Numbers(DType::I16, vec![Scalar::I(-32767)]),
            ),
        ];
        let d = Decoding::of(DType::I16, &a);
        assert_eq!(d.dtype, DType::F64);
        assert!(d.decode(-32767.0).is_nan());
        assert_eq!(d.decode(100.0), 100.0 * 0.0123456789);
        let single = attrs(&[("scale_factor", DType::F32, 0.1)]);
        let d = Decoding::of(DType::I16, &single);
        assert_eq!(d.decode(3.0) as f32, 3.0f32 * 0.1f32);
    }

    #[test]
    fn integer_promotion_is_numpys() {
        assert_eq!(promote(DType::I16, DType::I32), DType::I32);
        assert_eq!(promote(DType::U8, DType::I8), DType::I16);
        assert_eq!(promote(DType::U16, DType::I32), DType::I32);
        assert_eq!(promote(DType::U32, DType::I32), DType::I64);
        assert_eq!(promote(DType::U64, DType::I64), DType::F64);
        assert_eq!(promote(DType::I32, DType::F32), DType::F64);
        assert_eq!(promote(DType::I16, DType::F32), DType::F32);
    }

    #[test]
    fn common_type_is_numpys() {
        assert_eq!(common_type(&[DType::F32, DType::I16]), DType::F32);
        assert_eq!(common_type(&[DType::F32, DType::I32]), DType::F64);
        assert_eq!(common_type(&[DType::F32, DType::F64]), DType::F64);
        assert_eq!(common_type(&[DType::F32, DType::F32]), DType::F32);
    }

    #[test]
    fn a_re_encoding_on_packed_values_decodes_to_the_re_encoded_values() {
        let attrs: Attrs = vec![
            (
                "scale_factor".into(),
                AttrValue::Numbers(DType::F64, vec![Scalar::F(0.5)]),
            ),
            (
                "add_offset".into(),
                AttrValue::Numbers(DType::F64, vec![Scalar::F(3.0)]),
            ),
        ];
        // Hours since 2001-01-01 as hours since 2000-01-01: + 8784.
        let (s, o) = on_packed((1.0, 8784.0), &attrs);
        for raw in [0.0, 1.0, 7.0] {
            let decoded = raw * 0.5 + 3.0;
            assert_eq!((raw * s + o) * 0.5 + 3.0, decoded + 8784.0);
        }
        // Minutes as hours.
        let (s, o) = on_packed((1.0 / 60.0, 24.0), &attrs);
        let raw: f64 = 120.0;
        assert!(((raw * s + o) * 0.5 + 3.0 - ((raw * 0.5 + 3.0) / 60.0 + 24.0)).abs() < 1e-12);
        assert_eq!(on_packed((2.0, 5.0), &Vec::new()), (2.0, 5.0));
    }
}
