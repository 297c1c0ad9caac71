//! Chunking presets (`presets/*.toml`) and dimension roles.
//!
//! A preset says, per dimension *role* (time, vertical, y, x, other), how to size
//! chunks, plus the target chunk size, codec, Zarr format and shard size. Roles are
//! detected from the CF attributes of each dimension's coordinate variable (`axis`,
//! `standard_name`, `units`, `positive`) and from common names. Flags override presets.

use std::path::Path;

use serde::Deserialize;

use crate::model::{AttrValue, Attrs, attr};
use crate::plan::{DimRule, Role, RoleRules};

/// A resolved preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Its name (file stem).
    pub name: String,
    /// One line for `nc2zarr presets`.
    pub description: String,
    /// Chunk rule per role.
    pub rules: RoleRules,
    /// Target uncompressed chunk size.
    pub target_chunk_bytes: Option<u64>,
    /// Target uncompressed shard size (Zarr v3).
    pub shard_bytes: Option<u64>,
    /// Compression spec (`zstd:3`, …).
    pub compression: Option<String>,
    /// Zarr format (2 or 3).
    pub zarr_format: Option<u8>,
}

/// The presets that ship with nc2zarr (the files in `presets/`).
pub const BUILTIN: &[(&str, &str)] = &[
    ("balanced", include_str!("../presets/balanced.toml")),
    ("cmip6", include_str!("../presets/cmip6.toml")),
    ("era5", include_str!("../presets/era5.toml")),
    ("spatial", include_str!("../presets/spatial.toml")),
    ("timeseries", include_str!("../presets/timeseries.toml")),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreset {
    description: String,
    target_chunk_size: Option<String>,
    shard_size: Option<String>,
    compression: Option<String>,
    zarr_format: Option<u8>,
    #[serde(default)]
    dims: RawDims,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDims {
    time: Option<RawRule>,
    vertical: Option<RawRule>,
    y: Option<RawRule>,
    x: Option<RawRule>,
    other: Option<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    chunk: toml::Value,
    priority: Option<u8>,
}

fn parse_rule(role: Role, raw: &RawRule) -> Result<DimRule, String> {
    let priority = raw.priority.unwrap_or_else(|| role.default_priority());
    match &raw.chunk {
        toml::Value::Integer(n) if *n >= 1 => Ok(DimRule::Size(*n as u64)),
        toml::Value::String(s) if s == "full" => Ok(DimRule::Full),
        toml::Value::String(s) if s == "auto" => Ok(DimRule::Auto(priority)),
        other => Err(format!(
            "chunk for {role:?} must be a positive integer, \"full\" or \"auto\", not {other}"
        )),
    }
}

/// Parses preset TOML text.
pub fn parse(name: &str, text: &str) -> Result<Preset, String> {
    let raw: RawPreset = toml::from_str(text).map_err(|e| format!("preset {name}: {}", e.message()))?;
    let mut rules = RoleRules::default();
    for (role, r) in [
        (Role::Time, &raw.dims.time),
        (Role::Vertical, &raw.dims.vertical),
        (Role::Y, &raw.dims.y),
        (Role::X, &raw.dims.x),
        (Role::Other, &raw.dims.other),
    ] {
        if let Some(r) = r {
            rules.set(role, parse_rule(role, r).map_err(|e| format!("preset {name}: {e}"))?);
        }
    }
    let size = |s: &Option<String>, what: &str| -> Result<Option<u64>, String> {
        s.as_deref()
            .map(crate::units::parse_size)
            .transpose()
            .map_err(|e| format!("preset {name}: {what}: {e}"))
    };
    if let Some(f) = raw.zarr_format
        && f != 2
        && f != 3
    {
        return Err(format!("preset {name}: zarr_format must be 2 or 3"));
    }
    if let Some(c) = &raw.compression {
        c.parse::<crate::codec::Compression>()
            .map_err(|e| format!("preset {name}: {e}"))?;
    }
    Ok(Preset {
        name: name.to_string(),
        description: raw.description,
        rules,
        target_chunk_bytes: size(&raw.target_chunk_size, "target_chunk_size")?,
        shard_bytes: size(&raw.shard_size, "shard_size")?,
        compression: raw.compression,
        zarr_format: raw.zarr_format,
    })
}

/// Loads a built-in preset by name, or a preset file by path (`*.toml`).
pub fn load(name_or_path: &str) -> Result<Preset, String> {
    if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        return parse(name, text);
    }
    let path = Path::new(name_or_path);
    if path.extension().is_some_and(|e| e == "toml") || path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("preset file {}: {e}", path.display()))?;
        let stem = path
            .file_stem()
            .map_or("preset".into(), |s| s.to_string_lossy().into_owned());
        return parse(&stem, &text);
    }
    let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    Err(format!(
        "unknown preset '{name_or_path}'; built-in presets are {} (or give a path to a .toml file)",
        names.join(", ")
    ))
}

/// Every built-in preset, parsed.
pub fn builtin() -> Vec<Preset> {
    BUILTIN
        .iter()
        .map(|(n, t)| parse(n, t).expect("built-in presets parse"))
        .collect()
}

/// The role of a dimension, from its coordinate variable's attributes (if any) and name.
pub fn detect_role(dim: &str, coord_attrs: Option<&Attrs>) -> Role {
    let text = |k: &str| {
        coord_attrs
            .and_then(|a| attr(a, k))
            .and_then(AttrValue::as_text)
            .map(str::to_ascii_lowercase)
    };
    if let Some(axis) = text("axis") {
        match axis.trim() {
            "t" => return Role::Time,
            "z" => return Role::Vertical,
            "y" => return Role::Y,
            "x" => return Role::X,
            _ => {}
        }
    }
    if let Some(sn) = text("standard_name") {
        match sn.as_str() {
            "time" | "forecast_reference_time" => return Role::Time,
            "latitude" | "grid_latitude" | "projection_y_coordinate" => return Role::Y,
            "longitude" | "grid_longitude" | "projection_x_coordinate" => return Role::X,
            "air_pressure"
            | "height"
            | "depth"
            | "altitude"
            | "model_level_number"
            | "atmosphere_hybrid_sigma_pressure_coordinate"
            | "atmosphere_sigma_coordinate"
            | "ocean_sigma_coordinate"
            | "ocean_s_coordinate" => return Role::Vertical,
            _ => {}
        }
    }
    if let Some(units) = text("units") {
        if units.contains(" since ") {
            return Role::Time;
        }
        if matches!(
            units.as_str(),
            "degrees_north" | "degree_north" | "degrees_n" | "degree_n"
        ) {
            return Role::Y;
        }
        if matches!(
            units.as_str(),
            "degrees_east" | "degree_east" | "degrees_e" | "degree_e"
        ) {
            return Role::X;
        }
    }
    if text("positive").is_some_and(|p| p == "up" || p == "down") {
        return Role::Vertical;
    }
    match dim.to_ascii_lowercase().as_str() {
        "time" | "t" | "times" | "valid_time" | "time_counter" => Role::Time,
        "lat" | "latitude" | "y" | "rlat" | "nlat" | "j" | "yc" | "south_north" => Role::Y,
        "lon" | "longitude" | "x" | "rlon" | "nlon" | "i" | "xc" | "west_east" => Role::X,
        "level" | "lev" | "plev" | "levels" | "depth" | "height" | "z" | "pressure" | "isobaricinhpa"
        | "bottom_top" => Role::Vertical,
        _ => Role::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DType;
    use crate::plan::{ArrayInput, ChunkPolicy, DEFAULT_CHUNK_BYTES, choose_chunks};

    #[test]
    fn the_timeseries_preset_keeps_every_step_in_square_tiles() {
        // The full ERA5-like benchmark variable: 12 monthly files, chunks of one step.
        let a = ArrayInput {
            path: "t2m".into(),
            dims: vec!["time".into(), "latitude".into(), "longitude".into()],
            roles: vec![Role::Time, Role::Y, Role::X],
            shape: vec![1464, 361, 720],
            elem_bytes: 4,
            is_dim_coordinate: false,
            concat_axis: Some(0),
            file_lengths: vec![124, 116, 124, 120, 124, 120, 124, 124, 120, 124, 120, 124],
            source_chunks: Some(vec![1, 361, 720]),
            source_compressed: true,
            variable_length: false,
            fixed_layout: None,
        };
        let p = ChunkPolicy {
            rules: load("timeseries").unwrap().rules,
            ..Default::default()
        };
        let c = choose_chunks(&a, &p);
        assert_eq!(c[0], 1464);
        assert!(
            c[1] * c[2] * 1464 * 4 <= DEFAULT_CHUNK_BYTES && c[1] > 20 && c[2] > 20,
            "{c:?}"
        );
    }

    fn text_attrs(pairs: &[(&str, &str)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), AttrValue::Text(v.to_string())))
            .collect()
    }

    #[test]
    fn builtin_presets_parse() {
        let all = builtin();
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["balanced", "cmip6", "era5", "spatial", "timeseries"]);
        let ts = load("timeseries").unwrap();
        assert_eq!(ts.rules.get(Role::Time), DimRule::Full);
        assert!(matches!(ts.rules.get(Role::Y), DimRule::Auto(_)));
        assert_eq!(load("era5").unwrap().rules.get(Role::Time), DimRule::Size(24));
    }

    #[test]
    fn bad_presets_are_explained() {
        assert!(load("nope").unwrap_err().contains("unknown preset 'nope'"));
        let e = parse("x", "description = \"d\"\n[dims]\ntime = { chunk = 0 }\n").unwrap_err();
        assert!(e.contains("positive integer"), "{e}");
        let e = parse("x", "description = \"d\"\nbogus = 1\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = parse("x", "description = \"d\"\ntarget_chunk_size = \"lots\"\n").unwrap_err();
        assert!(e.contains("target_chunk_size"), "{e}");
        let e = parse("x", "description = \"d\"\ncompression = \"lzma\"\n").unwrap_err();
        assert!(e.contains("unknown compression"), "{e}");
    }

    #[test]
    fn roles_from_cf_attributes_and_names() {
        assert_eq!(detect_role("foo", Some(&text_attrs(&[("axis", "T")]))), Role::Time);
        assert_eq!(
            detect_role("foo", Some(&text_attrs(&[("units", "days since 1850-01-01")]))),
            Role::Time
        );
        assert_eq!(
            detect_role("foo", Some(&text_attrs(&[("units", "degrees_north")]))),
            Role::Y
        );
        assert_eq!(
            detect_role("foo", Some(&text_attrs(&[("standard_name", "longitude")]))),
            Role::X
        );
        assert_eq!(
            detect_role("foo", Some(&text_attrs(&[("positive", "down")]))),
            Role::Vertical
        );
        assert_eq!(detect_role("plev", None), Role::Vertical);
        assert_eq!(detect_role("latitude", None), Role::Y);
        assert_eq!(detect_role("bnds", None), Role::Other);
        let numeric: Attrs = vec![("axis".into(), AttrValue::Numbers(DType::I32, vec![]))];
        assert_eq!(detect_role("time", Some(&numeric)), Role::Time);
    }
}
