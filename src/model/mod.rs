//! Plain data types shared by the stages: element types, scalars and attributes.

use crate::json::Json;

mod dataset;
mod drift;

pub use dataset::{DimInfo, GroupInfo, Inventory, SourceFile, VarInfo};
pub use drift::{Action, Drift, DriftGroup};

/// Element type of a variable, as stored in Zarr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DType {
    /// `NC_BYTE`.
    I8,
    /// `NC_UBYTE`.
    U8,
    /// `NC_SHORT`.
    I16,
    /// `NC_USHORT`.
    U16,
    /// `NC_INT`.
    I32,
    /// `NC_UINT`.
    U32,
    /// `NC_INT64`.
    I64,
    /// `NC_UINT64`.
    U64,
    /// `NC_FLOAT`.
    F32,
    /// `NC_DOUBLE`.
    F64,
    /// `NC_CHAR`: one byte per element; Zarr `|S1` / `null_terminated_bytes`.
    Char,
    /// `NC_STRING`: variable-length UTF-8.
    String,
}

impl DType {
    /// Bytes per element, `None` for variable-length strings.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DType::I8 | DType::U8 | DType::Char => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
            DType::String => return None,
        })
    }

    /// Bytes per element for planning (strings count as 16).
    pub fn planning_size(self) -> u64 {
        self.size().unwrap_or(16) as u64
    }

    /// The netCDF CDL name (`float`, `short`, …).
    pub fn cdl_name(self) -> &'static str {
        match self {
            DType::I8 => "byte",
            DType::U8 => "ubyte",
            DType::I16 => "short",
            DType::U16 => "ushort",
            DType::I32 => "int",
            DType::U32 => "uint",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::F32 => "float",
            DType::F64 => "double",
            DType::Char => "char",
            DType::String => "string",
        }
    }

    /// Zarr v3 `data_type` name of the numeric types (and of the twin used to encode chars).
    pub fn zarr_v3_name(self) -> &'static str {
        match self {
            DType::I8 => "int8",
            DType::U8 | DType::Char => "uint8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::I32 => "int32",
            DType::U32 => "uint32",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::String => "string",
        }
    }

    /// Zarr v2 `dtype` string (little-endian).
    pub fn zarr_v2_name(self) -> &'static str {
        match self {
            DType::I8 => "|i1",
            DType::U8 => "|u1",
            DType::I16 => "<i2",
            DType::U16 => "<u2",
            DType::I32 => "<i4",
            DType::U32 => "<u4",
            DType::I64 => "<i8",
            DType::U64 => "<u8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::Char => "|S1",
            DType::String => "|O",
        }
    }

    /// netCDF's default fill value (`NC_FILL_*`): what unwritten parts of a variable
    /// without `_FillValue` read as.
    pub fn netcdf_default_fill(self) -> Option<Scalar> {
        Some(match self {
            DType::I8 => Scalar::I(-127),
            DType::U8 => Scalar::I(255),
            DType::I16 => Scalar::I(-32767),
            DType::U16 => Scalar::I(65535),
            DType::I32 => Scalar::I(-2_147_483_647),
            DType::U32 => Scalar::I(4_294_967_295),
            DType::I64 => Scalar::I(-9_223_372_036_854_775_806),
            DType::U64 => Scalar::U(18_446_744_073_709_551_614),
            DType::F32 => Scalar::F(f64::from(9.969_21e36_f32)),
            DType::F64 => Scalar::F(9.969_209_968_386_869e36),
            DType::Char | DType::String => return None,
        })
    }

    /// True for `F32`/`F64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// True for the integer types.
    pub fn is_integer(self) -> bool {
        !self.is_float() && !matches!(self, DType::Char | DType::String)
    }

    /// True for the signed integer types.
    pub fn is_signed(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }
}

/// One numeric value, kept exactly.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Scalar {
    /// A signed integer.
    I(i64),
    /// An unsigned integer too large for `i64`, or any `u64`.
    U(u64),
    /// A floating-point number (serialized as its bits: JSON has no NaN).
    F(#[serde(with = "f64_bits")] f64),
}

/// Serializes `f64` as its IEEE bits, so NaN and infinities survive JSON.
pub mod f64_bits {
    /// Writes the bits.
    pub fn serialize<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(x.to_bits())
    }

    /// Reads the bits.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        <u64 as serde::Deserialize>::deserialize(d).map(f64::from_bits)
    }
}

/// [`f64_bits`] for a list of numbers.
pub mod f64s_bits {
    /// Writes the bits.
    pub fn serialize<S: serde::Serializer>(x: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(x.iter().map(|v| v.to_bits()))
    }

    /// Reads the bits.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        <Vec<u64> as serde::Deserialize>::deserialize(d).map(|v| v.into_iter().map(f64::from_bits).collect())
    }
}

impl Scalar {
    /// Decodes one element of `dtype` from native-endian bytes.
    pub fn from_ne_bytes(dtype: DType, b: &[u8]) -> Scalar {
        match dtype {
            DType::I8 => Scalar::I(i8::from_ne_bytes([b[0]]).into()),
            DType::U8 | DType::Char => Scalar::I(b[0].into()),
            DType::I16 => Scalar::I(i16::from_ne_bytes([b[0], b[1]]).into()),
            DType::U16 => Scalar::I(u16::from_ne_bytes([b[0], b[1]]).into()),
            DType::I32 => Scalar::I(i32::from_ne_bytes(b[..4].try_into().unwrap()).into()),
            DType::U32 => Scalar::I(u32::from_ne_bytes(b[..4].try_into().unwrap()).into()),
            DType::I64 => Scalar::I(i64::from_ne_bytes(b[..8].try_into().unwrap())),
            DType::U64 => Scalar::U(u64::from_ne_bytes(b[..8].try_into().unwrap())),
            DType::F32 => Scalar::F(f32::from_ne_bytes(b[..4].try_into().unwrap()).into()),
            DType::F64 => Scalar::F(f64::from_ne_bytes(b[..8].try_into().unwrap())),
            DType::String => Scalar::I(0),
        }
    }

    /// Encodes the value as one little-endian element of `dtype`.
    pub fn to_le_bytes(self, dtype: DType) -> Vec<u8> {
        match dtype {
            DType::I8 => (self.as_i64() as i8).to_le_bytes().to_vec(),
            DType::U8 | DType::Char => vec![self.as_i64() as u8],
            DType::I16 => (self.as_i64() as i16).to_le_bytes().to_vec(),
            DType::U16 => (self.as_i64() as u16).to_le_bytes().to_vec(),
            DType::I32 => (self.as_i64() as i32).to_le_bytes().to_vec(),
            DType::U32 => (self.as_i64() as u32).to_le_bytes().to_vec(),
            DType::I64 => self.as_i64().to_le_bytes().to_vec(),
            DType::U64 => self.as_u64().to_le_bytes().to_vec(),
            DType::F32 => (self.as_f64() as f32).to_le_bytes().to_vec(),
            DType::F64 => self.as_f64().to_le_bytes().to_vec(),
            DType::String => Vec::new(),
        }
    }

    /// The value as `f64` (may round large integers).
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::I(v) => v as f64,
            Scalar::U(v) => v as f64,
            Scalar::F(v) => v,
        }
    }

    fn as_i64(self) -> i64 {
        match self {
            Scalar::I(v) => v,
            Scalar::U(v) => v as i64,
            Scalar::F(v) => v as i64,
        }
    }

    fn as_u64(self) -> u64 {
        match self {
            Scalar::I(v) => v as u64,
            Scalar::U(v) => v,
            Scalar::F(v) => v as u64,
        }
    }

    /// The value as JSON (floats may be NaN/Infinity, written the way Python does).
    pub fn to_json(self) -> Json {
        match self {
            Scalar::I(v) => Json::Int(v),
            Scalar::U(v) => Json::UInt(v),
            Scalar::F(v) => Json::Float(v),
        }
    }

    /// Exact equality that treats NaN as equal to NaN.
    pub fn same(self, other: Scalar) -> bool {
        match (self, other) {
            (Scalar::F(a), Scalar::F(b)) => a == b || (a.is_nan() && b.is_nan()),
            (a, b) => a == b,
        }
    }
}

/// An attribute value in the form nc2zarr writes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AttrValue {
    /// Text (`NC_CHAR`, or a single `NC_STRING`).
    Text(String),
    /// Several strings (`NC_STRING` array).
    Strings(Vec<String>),
    /// Numbers of one netCDF type.
    Numbers(DType, Vec<Scalar>),
}

impl AttrValue {
    /// JSON form, as xarray reads it back: one value is a scalar, several a list.
    pub fn to_json(&self) -> Json {
        match self {
            AttrValue::Text(s) => Json::Str(s.clone()),
            AttrValue::Strings(v) => Json::Arr(v.iter().cloned().map(Json::Str).collect()),
            AttrValue::Numbers(_, v) if v.len() == 1 => v[0].to_json(),
            AttrValue::Numbers(_, v) => Json::Arr(v.iter().map(|s| s.to_json()).collect()),
        }
    }

    /// Equality that treats NaN as equal to NaN.
    pub fn same(&self, other: &AttrValue) -> bool {
        match (self, other) {
            (AttrValue::Numbers(ta, a), AttrValue::Numbers(tb, b)) => {
                ta == tb && a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(*y))
            }
            (a, b) => a == b,
        }
    }

    /// The text, when this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttrValue::Text(s) => Some(s),
            AttrValue::Strings(v) if v.len() == 1 => Some(&v[0]),
            _ => None,
        }
    }

    /// The single number, when this is one number.
    pub fn as_scalar(&self) -> Option<Scalar> {
        match self {
            AttrValue::Numbers(_, v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    /// A short human-readable rendering for reports.
    pub fn display(&self) -> String {
        let s = self.to_json().to_compact();
        if s.chars().count() > 80 {
            let cut: String = s.chars().take(77).collect();
            format!("{cut}...")
        } else {
            s
        }
    }
}

/// An ordered list of attributes.
pub type Attrs = Vec<(String, AttrValue)>;

/// Looks up an attribute by name.
pub fn attr<'a>(attrs: &'a Attrs, name: &str) -> Option<&'a AttrValue> {
    attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// The attributes that link a variable to its cell boundaries: CF `bounds`, and
/// `climatology` for climatological statistics (whose bounds are times in the same way).
pub const BOUNDS_LINKS: [&str; 2] = ["bounds", "climatology"];

/// The variables these attributes name as cell boundaries (`bounds` or `climatology`).
pub fn bounds_named(attrs: &Attrs) -> impl Iterator<Item = &str> {
    BOUNDS_LINKS
        .iter()
        .filter_map(|k| attr(attrs, k).and_then(AttrValue::as_text))
}

/// True when these attributes name variable `name` as their cell boundaries.
pub fn names_as_bounds(attrs: &Attrs, name: &str) -> bool {
    bounds_named(attrs).any(|b| b == name)
}

/// Attributes as a JSON object.
pub fn attrs_json(attrs: &Attrs) -> Json {
    Json::Obj(attrs.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// The on-disk format of a netCDF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// CDF-1.
    Classic,
    /// CDF-2.
    Offset64,
    /// CDF-5.
    Cdf5,
    /// HDF5-based netCDF-4.
    Netcdf4,
    /// HDF5-based netCDF-4 restricted to the classic model.
    Netcdf4Classic,
}

impl Format {
    /// The name `ncdump -k` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Classic => "classic",
            Format::Offset64 => "64-bit offset",
            Format::Cdf5 => "cdf5",
            Format::Netcdf4 => "netCDF-4",
            Format::Netcdf4Classic => "netCDF-4 classic model",
        }
    }
}

/// Storage settings of a variable in the source file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Storage {
    /// HDF5 chunk shape, when chunked.
    pub chunks: Option<Vec<u64>>,
    /// Filters, as `name` or `name(level)` strings.
    pub filters: Vec<String>,
    /// Filters the library cannot decode here (no plugin).
    pub unavailable_filters: Vec<String>,
    /// Written without fill values: parts never written hold undefined values.
    pub no_fill: bool,
}

/// A `scale_factor` or `add_offset`, with the precision of the attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Factor {
    /// Its value.
    #[serde(with = "f64_bits")]
    pub value: f64,
    /// The attribute is `float` (single precision), which xarray's arithmetic honours.
    pub single: bool,
}

/// How one file's raw values of a variable become decoded values.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decoding {
    /// Raw values that mean "missing" (`_FillValue`, `missing_value`; NaN left out).
    #[serde(with = "f64s_bits")]
    pub missing: Vec<f64>,
    /// `scale_factor`, if any.
    pub scale: Option<Factor>,
    /// `add_offset`, if any.
    pub offset: Option<Factor>,
    /// The type xarray decodes this file's values to: the raw type when there is
    /// nothing to decode, else `F32` or `F64`.
    pub dtype: DType,
}

/// The Zarr format written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ZarrFormat {
    /// Zarr v2 (`.zarray`, `.zattrs`, `.zgroup`, `.zmetadata`).
    V2,
    /// Zarr v3 (`zarr.json`).
    V3,
}

impl ZarrFormat {
    /// `2` or `3`.
    pub fn number(self) -> u64 {
        match self {
            ZarrFormat::V2 => 2,
            ZarrFormat::V3 => 3,
        }
    }
}
