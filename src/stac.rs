//! STAC metadata for a store, so that catalogs (and the people searching them) find it:
//! a Collection and an Item with the datacube extension — dimensions with their
//! extents and steps, variables with units and dimensions — and the store as a Zarr
//! asset. Built from the store itself (its consolidated metadata and coordinate
//! values), so it is right after an append as well as after a convert.

use std::path::{Path, PathBuf};

use crate::cftime::{Calendar, TimeUnits};
use crate::error::{Error, Result};
use crate::existing::{self, FoundArray};
use crate::json::Json;
use crate::json_obj;
use crate::model::ZarrFormat;
use crate::store::{StoreOptions, Target};

/// The STAC version written (the one pystac's bundled schemas validate offline).
pub const STAC_VERSION: &str = "1.1.0";
/// The datacube extension's schema.
pub const DATACUBE_SCHEMA: &str = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json";

/// What [`write`] wrote.
#[derive(Debug)]
pub struct StacFiles {
    /// The Collection document.
    pub collection: PathBuf,
    /// The Item document.
    pub item: PathBuf,
}

/// Refuses a target STAC documents cannot describe yet: an Icechunk repository (its
/// asset conventions are not settled).
pub fn check_target(target: &str) -> Result<()> {
    if crate::store::icechunk::strip_scheme(target).is_some() {
        return Err(Error::Usage(
            "--stac and `nc2zarr stac` describe plain Zarr stores; Icechunk repositories are not supported yet".into(),
        ));
    }
    Ok(())
}

/// Writes `collection.json` and `item.json` describing the store at `target` into `dir`
/// (created if needed). `id` defaults to the store's name without `.zarr`.
pub fn write(target: &str, options: &StoreOptions, dir: &Path, id: Option<&str>) -> Result<StacFiles> {
    check_target(target)?;
    let store = Target::open_existing(target, options)?;
    let (format, arrays) = existing::read_arrays(&store)?;
    let attrs = existing::read_root_attrs(&store)?;
    let href = asset_href(target, &store);
    let id = id.map_or_else(|| default_id(&href), str::to_string);
    let cube = Cube::of(&store, format, &arrays)?;
    let (collection, item) = documents(&id, &href, format, &attrs, &cube);
    std::fs::create_dir_all(dir).map_err(|e| Error::Usage(format!("--stac {}: {e}", dir.display())))?;
    let files = StacFiles {
        collection: dir.join("collection.json"),
        item: dir.join("item.json"),
    };
    for (path, doc) in [(&files.collection, &collection), (&files.item, &item)] {
        std::fs::write(path, doc.to_pretty() + "\n")
            .map_err(|e| Error::Usage(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(files)
}

/// Where catalogs point readers: the absolute path of a local store, else its URL.
fn asset_href(target: &str, store: &Target) -> String {
    match store.local_dir() {
        Some(dir) => std::fs::canonicalize(dir).map_or_else(|_| target.to_string(), |p| p.display().to_string()),
        None => store.display().to_string(),
    }
}

/// `era5` for `…/era5.zarr`.
fn default_id(href: &str) -> String {
    let path = href.split('?').next().unwrap_or(href);
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("store");
    let name = name.strip_suffix(".zarr").unwrap_or(name);
    if name.is_empty() { "store".into() } else { name.into() }
}

/// One dimension of the cube.
struct Dimension {
    name: String,
    /// The `cube:dimensions` entry.
    doc: Json,
    /// For the Collection's extent: `Temporal(start, end)`, `Lon`/`Lat(min, max)`.
    role: Role,
}

enum Role {
    Temporal(String, String),
    Lon(f64, f64),
    Lat(f64, f64),
    Other,
}

/// The root group's dimensions and variables.
struct Cube {
    dimensions: Vec<Dimension>,
    variables: Json,
}

fn text<'a>(a: &'a FoundArray, key: &str) -> Option<&'a str> {
    a.attrs.get(key).and_then(Json::as_str)
}

impl Cube {
    fn of(store: &Target, format: ZarrFormat, arrays: &[FoundArray]) -> Result<Cube> {
        let root: Vec<&FoundArray> = arrays.iter().filter(|a| !a.path.contains('/')).collect();
        let mut names: Vec<(String, u64)> = Vec::new();
        for a in &root {
            for (d, n) in a.dims.iter().zip(&a.shape) {
                if !names.iter().any(|(x, _)| x == d) {
                    names.push((d.clone(), *n));
                }
            }
        }
        let mut dimensions = Vec::new();
        for (name, len) in names {
            let coord = root.iter().find(|a| a.path == name && a.dims.len() == 1);
            let values = match coord {
                Some(c) if c.dtype.is_float() || c.dtype.is_integer() => existing::read_numbers(store, format, c)?,
                _ => Vec::new(),
            };
            dimensions.push(dimension(&name, len, coord.copied(), &values));
        }
        // Arrays named in another's `coordinates` or `bounds` are auxiliary.
        let auxiliary: Vec<&str> = root
            .iter()
            .flat_map(|a| {
                let listed = text(a, "coordinates").unwrap_or("").split_whitespace();
                listed.chain(crate::model::BOUNDS_LINKS.iter().filter_map(|k| text(a, k)))
            })
            .collect();
        let variables = Json::Obj(
            root.iter()
                .filter(|a| !(a.dims.len() == 1 && a.dims[0] == a.path))
                .map(|a| {
                    let mut v = json_obj! {
                        "type" => if auxiliary.contains(&a.path.as_str()) { "auxiliary" } else { "data" },
                        "dimensions" => a.dims.clone(),
                    };
                    if let Json::Obj(fields) = &mut v {
                        if let Some(u) = text(a, "units") {
                            fields.push(("unit".into(), Json::from(u)));
                        }
                        if let Some(d) = text(a, "long_name").or_else(|| text(a, "standard_name")) {
                            fields.push(("description".into(), Json::from(d)));
                        }
                    }
                    (a.path.clone(), v)
                })
                .collect(),
        );
        Ok(Cube { dimensions, variables })
    }

    fn dimensions_json(&self) -> Json {
        Json::Obj(
            self.dimensions
                .iter()
                .map(|d| (d.name.clone(), d.doc.clone()))
                .collect(),
        )
    }

    /// `[west, south, east, north]`: from the lon/lat dimensions, else the whole globe.
    fn bbox(&self) -> [f64; 4] {
        let mut b = [-180.0, -90.0, 180.0, 90.0];
        for d in &self.dimensions {
            match d.role {
                // Longitudes in 0..360 beyond 180 cannot be one west-east box: the globe.
                Role::Lon(lo, hi) if lo >= -180.0 && hi <= 180.0 => (b[0], b[2]) = (lo, hi),
                Role::Lat(lo, hi) => (b[1], b[3]) = (lo.max(-90.0), hi.min(90.0)),
                _ => {}
            }
        }
        b
    }

    fn interval(&self) -> Option<(String, String)> {
        self.dimensions.iter().find_map(|d| match &d.role {
            Role::Temporal(a, b) => Some((a.clone(), b.clone())),
            _ => None,
        })
    }
}

/// The step between values when they are evenly spaced.
fn regular_step(values: &[f64]) -> Option<f64> {
    let step = values.get(1)? - values.first()?;
    let even = values
        .windows(2)
        .all(|w| ((w[1] - w[0]) - step).abs() <= step.abs() * 1e-9);
    even.then_some(step)
}

/// `PT6H`, `P1D`, `PT90S`, `PT0.5S`: an ISO 8601 duration of `seconds`.
fn duration(seconds: f64) -> String {
    let seconds = seconds.abs();
    if seconds.fract() != 0.0 || seconds < 1.0 {
        return format!("PT{seconds}S");
    }
    let s = seconds as u64;
    if s.is_multiple_of(86_400) {
        format!("P{}D", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("PT{}H", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("PT{}M", s / 60)
    } else {
        format!("PT{s}S")
    }
}

/// Which spatial axis a coordinate is (by CF attributes, else by the usual names), and
/// whether it is a geographic longitude or latitude (WGS 84 degrees) rather than a
/// projected or rotated one.
fn spatial_axis(c: &FoundArray) -> Option<(&'static str, bool)> {
    let axis = text(c, "axis").unwrap_or("").to_ascii_uppercase();
    let standard = text(c, "standard_name").unwrap_or("");
    let units = text(c, "units").unwrap_or("");
    let name = c.path.to_ascii_lowercase();
    let named = |names: &[&str]| names.contains(&name.as_str());
    let lon = standard == "longitude"
        || units.starts_with("degrees_east")
        || units == "degree_east"
        || (standard.is_empty() && named(&["lon", "longitude"]));
    let lat = standard == "latitude"
        || units.starts_with("degrees_north")
        || units == "degree_north"
        || (standard.is_empty() && named(&["lat", "latitude"]));
    if lon || axis == "X" {
        Some(("x", lon))
    } else if lat || axis == "Y" {
        Some(("y", lat))
    } else if axis == "Z" || c.attrs.get("positive").is_some() {
        Some(("z", false))
    } else {
        None
    }
}

/// Coordinate values without fill values (`_FillValue`, `missing_value`, netCDF's
/// default fill) or non-finite ones.
fn valid_values(c: &FoundArray, values: &[f64]) -> Vec<f64> {
    let fills: Vec<f64> = ["_FillValue", "missing_value"]
        .iter()
        .filter_map(|k| c.attrs.get(k).and_then(Json::as_f64))
        .collect();
    values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && v.abs() < 9.9e36 && !fills.contains(v))
        .collect()
}

/// The `cube:dimensions` entry of one dimension.
fn dimension(name: &str, len: u64, coord: Option<&FoundArray>, values: &[f64]) -> Dimension {
    let values = coord.map_or_else(Vec::new, |c| valid_values(c, values));
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let has_range = lo <= hi;
    let step = regular_step(&values);
    let index = || Dimension {
        name: name.into(),
        doc: json_obj! {
            "type" => "index",
            "extent" => vec![Json::from(0u64), Json::from(len.saturating_sub(1))],
            "step" => 1u64,
            "description" => "position along the dimension (no coordinate values)",
        },
        role: Role::Other,
    };
    let Some(c) = coord.filter(|_| has_range) else {
        return index();
    };
    // A CF time axis: RFC 3339 extent, ISO 8601 step.
    if let Some(units) = text(c, "units").and_then(TimeUnits::parse)
        && let Ok(calendar) = Calendar::parse(text(c, "calendar"))
        && let (Ok(a), Ok(b)) = (units.timestamp(lo, calendar), units.timestamp(hi, calendar))
    {
        let step_json = step.map_or(Json::Null, |s| Json::from(duration(s * units.step_seconds)));
        return Dimension {
            name: name.into(),
            doc: json_obj! { "type" => "temporal", "extent" => vec![a.clone(), b.clone()], "step" => step_json },
            role: Role::Temporal(a, b),
        };
    }
    let step_json = step.map_or(Json::Null, Json::from);
    let unit = text(c, "units");
    match spatial_axis(c) {
        Some((axis, geographic)) => {
            let mut doc = json_obj! {
                "type" => "spatial",
                "axis" => axis,
                "extent" => vec![lo, hi],
                "step" => step_json,
            };
            if let Json::Obj(fields) = &mut doc {
                if geographic {
                    fields.push(("reference_system".into(), Json::from(4326u64)));
                } else if let Some(u) = unit {
                    fields.push(("unit".into(), Json::from(u)));
                }
            }
            // Only WGS 84 longitudes and latitudes say where on Earth the data is.
            let role = match (axis, geographic) {
                ("x", true) => Role::Lon(lo, hi),
                ("y", true) => Role::Lat(lo, hi),
                _ => Role::Other,
            };
            Dimension {
                name: name.into(),
                doc,
                role,
            }
        }
        None => {
            let mut doc = json_obj! { "type" => name, "extent" => vec![lo, hi], "step" => step_json };
            if let (Json::Obj(fields), Some(u)) = (&mut doc, unit) {
                fields.push(("unit".into(), Json::from(u)));
            }
            Dimension {
                name: name.into(),
                doc,
                role: Role::Other,
            }
        }
    }
}

/// A licence STAC accepts: an SPDX identifier as the files give it, else `other`.
fn license(attrs: &Json) -> String {
    let given = attrs.get("license").and_then(Json::as_str).unwrap_or("").trim();
    let spdx_like = !given.is_empty() && given.chars().all(|c| c.is_ascii_alphanumeric() || "-.+".contains(c));
    if spdx_like { given.into() } else { "other".into() }
}

/// The Collection and the Item.
fn documents(id: &str, href: &str, format: ZarrFormat, attrs: &Json, cube: &Cube) -> (Json, Json) {
    let attr = |k: &str| attrs.get(k).and_then(Json::as_str).map(str::to_string);
    let title = attr("title").unwrap_or_else(|| id.to_string());
    let description = attr("summary")
        .or_else(|| attr("comment"))
        .or_else(|| attr("title"))
        .unwrap_or_else(|| format!("{id}: NetCDF converted to Zarr by nc2zarr"));
    let zarr_format = match format {
        ZarrFormat::V2 => 2u64,
        ZarrFormat::V3 => 3u64,
    };
    let asset = json_obj! {
        "zarr" => json_obj! {
            "href" => href,
            "type" => "application/vnd+zarr",
            "title" => title.clone(),
            "roles" => vec!["data", "zarr"],
            "zarr:zarr_format" => zarr_format,
            "xarray:open_kwargs" => json_obj! { "consolidated" => true },
        },
    };
    let bbox = cube.bbox();
    let (start, end) = match cube.interval() {
        Some((a, b)) => (Json::from(a), Json::from(b)),
        None => (Json::Null, Json::Null),
    };
    let collection = json_obj! {
        "type" => "Collection",
        "stac_version" => STAC_VERSION,
        "stac_extensions" => vec![DATACUBE_SCHEMA],
        "id" => id,
        "title" => title.clone(),
        "description" => description.clone(),
        "license" => license(attrs),
        "extent" => json_obj! {
            "spatial" => json_obj! { "bbox" => vec![bbox.to_vec()] },
            "temporal" => json_obj! { "interval" => vec![vec![start.clone(), end.clone()]] },
        },
        "cube:dimensions" => cube.dimensions_json(),
        "cube:variables" => cube.variables.clone(),
        "assets" => asset.clone(),
        "links" => vec![json_obj! { "rel" => "item", "href" => "./item.json", "type" => "application/geo+json" }],
    };
    let [w, s, e, n] = bbox;
    let mut properties = vec![
        ("title".to_string(), Json::from(title)),
        ("description".to_string(), Json::from(description)),
        ("cube:dimensions".to_string(), cube.dimensions_json()),
        ("cube:variables".to_string(), cube.variables.clone()),
    ];
    if start == Json::Null {
        // An Item needs a time: without a time axis, the time it was catalogued.
        properties.push(("datetime".into(), Json::from(now_rfc3339())));
    } else {
        properties.push(("datetime".into(), Json::Null));
        properties.push(("start_datetime".into(), start));
        properties.push(("end_datetime".into(), end));
    }
    let item = json_obj! {
        "type" => "Feature",
        "stac_version" => STAC_VERSION,
        "stac_extensions" => vec![DATACUBE_SCHEMA],
        "id" => id,
        "collection" => id,
        "bbox" => bbox.to_vec(),
        "geometry" => json_obj! {
            "type" => "Polygon",
            "coordinates" => vec![vec![vec![w, s], vec![e, s], vec![e, n], vec![w, n], vec![w, s]]],
        },
        "properties" => Json::Obj(properties),
        "assets" => asset,
        "links" => vec![json_obj! { "rel" => "collection", "href" => "./collection.json", "type" => "application/json" }],
    };
    (collection, item)
}

/// Now, as an RFC 3339 timestamp.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    TimeUnits::parse("seconds since 1970-01-01")
        .and_then(|u| u.timestamp(secs as f64, Calendar::ProlepticGregorian).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_steps() {
        assert_eq!(duration(6.0 * 3600.0), "PT6H");
        assert_eq!(duration(86_400.0), "P1D");
        assert_eq!(duration(90.0), "PT90S");
        assert_eq!(duration(1800.0), "PT30M");
        assert_eq!(duration(0.5), "PT0.5S");
        assert_eq!(regular_step(&[0.0, 0.25, 0.5, 0.75]), Some(0.25));
        assert_eq!(regular_step(&[0.0, 31.0, 59.0]), None);
        assert_eq!(regular_step(&[1.0]), None);
    }

    #[test]
    fn ids_and_licences() {
        assert_eq!(default_id("/data/era5.zarr"), "era5");
        assert_eq!(default_id("s3://bucket/cmip6/tas.zarr/"), "tas");
        assert_eq!(default_id("az://c/era5.zarr?[redacted]"), "era5");
        assert_eq!(license(&json_obj! { "license" => "CC-BY-4.0" }), "CC-BY-4.0");
        assert_eq!(
            license(&json_obj! { "license" => "Data may be used freely with attribution" }),
            "other"
        );
        assert_eq!(license(&Json::Obj(vec![])), "other");
    }
}
