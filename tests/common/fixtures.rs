//! NetCDF fixtures written with the netcdf crate (shared by the tests and the demo).

use std::path::{Path, PathBuf};

/// netCDF flavours a fixture can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Classic,
    Offset64,
    Cdf5,
    Netcdf4,
    Netcdf4Classic,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Classic,
        Kind::Offset64,
        Kind::Cdf5,
        Kind::Netcdf4,
        Kind::Netcdf4Classic,
    ];

    fn options(self) -> netcdf::Options {
        match self {
            Kind::Classic => netcdf::Options::empty(),
            Kind::Offset64 => netcdf::Options::_64BIT_OFFSET,
            Kind::Cdf5 => netcdf::Options::_64BIT_DATA,
            Kind::Netcdf4 => netcdf::Options::NETCDF4,
            Kind::Netcdf4Classic => netcdf::Options::NETCDF4 | netcdf::Options::CLASSIC,
        }
    }

    pub fn is_nc4(self) -> bool {
        matches!(self, Kind::Netcdf4 | Kind::Netcdf4Classic)
    }
}

/// Creates a file of `kind` at `path`.
pub fn create(path: &Path, kind: Kind) -> netcdf::FileMut {
    static NO_LOCKS: std::sync::Once = std::sync::Once::new();
    // Child processes spawned by parallel tests inherit open HDF5 files (and their
    // locks); without this a test can find its fixture locked by another test's child.
    // SAFETY: set once, before this process opens any HDF5 file.
    NO_LOCKS.call_once(|| unsafe { std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE") });
    // The netcdf crate probes optional attributes; keep HDF5 from printing each miss.
    // SAFETY: HDF5 keeps this per thread; null handler = no printing.
    unsafe { hdf5_sys::h5e::H5Eset_auto2(hdf5_sys::h5e::H5E_DEFAULT, None, std::ptr::null_mut()) };
    netcdf::create_with(path, kind.options()).unwrap_or_else(|e| panic!("create {}: {e}", path.display()))
}

/// One month of an ERA5-like dataset.
pub struct Month {
    /// Time values of this file.
    pub times: Vec<i32>,
    /// Time units of this file.
    pub units: &'static str,
}

/// Writes an ERA5-like file: time (unlimited), lat, lon, t2m float32 with NaN fill,
/// tp int16 packed with `_FillValue`, a static `orog`, and global attributes.
pub fn era_file(path: &Path, kind: Kind, month: &Month, nlat: usize, nlon: usize) {
    let mut f = create(path, kind);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("lat", nlat).unwrap();
    f.add_dimension("lon", nlon).unwrap();
    f.add_attribute("Conventions", "CF-1.8").unwrap();
    f.add_attribute("title", "nc2zarr test dataset").unwrap();
    f.add_attribute("history", format!("created for {}", path.display()))
        .unwrap();
    f.add_attribute("version", 3i32).unwrap();
    // Define everything first (classic files cannot add attributes after data).
    {
        let mut v = f.add_variable::<i32>("time", &["time"]).unwrap();
        v.put_attribute("units", month.units).unwrap();
        v.put_attribute("calendar", "gregorian").unwrap();
        v.put_attribute("standard_name", "time").unwrap();
        v.put_attribute("axis", "T").unwrap();
    }
    f.add_variable::<f32>("lat", &["lat"])
        .unwrap()
        .put_attribute("units", "degrees_north")
        .unwrap();
    f.add_variable::<f32>("lon", &["lon"])
        .unwrap()
        .put_attribute("units", "degrees_east")
        .unwrap();
    {
        let mut v = f.add_variable::<f32>("t2m", &["time", "lat", "lon"]).unwrap();
        if kind.is_nc4() {
            v.set_chunking(&[1, nlat, nlon]).unwrap();
            v.set_compression(1, true).unwrap();
        }
        v.set_fill_value(f32::NAN).unwrap();
        v.put_attribute("units", "K").unwrap();
        v.put_attribute("long_name", "2 metre temperature").unwrap();
        v.put_attribute("valid_range", vec![150.0f32, 350.0]).unwrap();
    }
    {
        let mut v = f.add_variable::<i16>("tp", &["time", "lat", "lon"]).unwrap();
        v.set_fill_value(-32767i16).unwrap();
        v.put_attribute("scale_factor", 0.001f64).unwrap();
        v.put_attribute("add_offset", 10.0f64).unwrap();
        v.put_attribute("units", "m").unwrap();
    }
    f.add_variable::<f64>("orog", &["lat", "lon"])
        .unwrap()
        .put_attribute("units", "m")
        .unwrap();
    f.enddef().unwrap();

    let nt = month.times.len();
    f.variable_mut("time")
        .unwrap()
        .put_values(&month.times, [..nt])
        .unwrap();
    let lat: Vec<f32> = (0..nlat)
        .map(|i| 90.0 - 180.0 * i as f32 / (nlat - 1).max(1) as f32)
        .collect();
    f.variable_mut("lat").unwrap().put_values(&lat, ..).unwrap();
    let lon: Vec<f32> = (0..nlon).map(|i| 360.0 * i as f32 / nlon as f32).collect();
    f.variable_mut("lon").unwrap().put_values(&lon, ..).unwrap();
    let mut t2m: Vec<f32> = Vec::with_capacity(nt * nlat * nlon);
    for (t, &tv) in month.times.iter().enumerate() {
        for y in 0..nlat {
            for x in 0..nlon {
                let val = 250.0 + (tv as f32 * 0.01).sin() * 10.0 + y as f32 * 0.5 - x as f32 * 0.25;
                // A scattering of missing values.
                t2m.push(if (t + y + x) % 17 == 0 { f32::NAN } else { val });
            }
        }
    }
    f.variable_mut("t2m")
        .unwrap()
        .put_values(&t2m, (0..nt, 0..nlat, 0..nlon))
        .unwrap();
    let tp: Vec<i16> = (0..nt * nlat * nlon)
        .map(|i| {
            if i % 11 == 0 {
                -32767
            } else {
                ((i * 37 + month.times[0] as usize) % 20000) as i16 - 10000
            }
        })
        .collect();
    f.variable_mut("tp")
        .unwrap()
        .put_values(&tp, (0..nt, 0..nlat, 0..nlon))
        .unwrap();
    let orog: Vec<f64> = (0..nlat * nlon).map(|i| (i as f64).sqrt() * 100.0).collect();
    f.variable_mut("orog")
        .unwrap()
        .put_values(&orog, (0..nlat, 0..nlon))
        .unwrap();
}

/// Writes an ERA5-like set of `months` files into `dir`; returns their paths.
pub fn era_set(dir: &Path, kind: Kind, months: &[Month], nlat: usize, nlon: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    months
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let p = dir.join(format!("part_{i:02}.nc"));
            era_file(&p, kind, m, nlat, nlon);
            p
        })
        .collect()
}

/// Three consecutive 6-hourly "months" in hours since 1900.
pub fn three_months(steps: usize) -> Vec<Month> {
    let start = 1_051_896; // 2020-01-01 in hours since 1900-01-01
    (0..3)
        .map(|m| Month {
            times: (0..steps).map(|i| start + 6 * (m * steps + i) as i32).collect(),
            units: "hours since 1900-01-01 00:00:00",
        })
        .collect()
}

/// A netCDF-4 file with nested groups, strings, chars, scalars and an enum-free mix of types.
pub fn rich_nc4(path: &Path) {
    let mut f = create(path, Kind::Netcdf4);
    f.add_dimension("x", 4).unwrap();
    f.add_dimension("strlen", 6).unwrap();
    f.add_attribute("title", "groups and strings").unwrap();
    f.add_attribute("tags", vec!["a", "b"]).unwrap();
    {
        let mut v = f.add_string_variable("names", &["x"]).unwrap();
        for (i, n) in ["alpha", "béta", "", "delta"].iter().enumerate() {
            v.put_string(n, [i]).unwrap();
        }
        v.put_attribute("long_name", "station names").unwrap();
    }
    {
        let mut v = f.add_variable::<u8>("flags", &["x"]).unwrap();
        v.put_values(&[1u8, 2, 255, 0], ..).unwrap();
        v.put_attribute("flag_values", vec![1u8, 2]).unwrap();
    }
    {
        let mut v = f.add_variable::<u64>("big", &["x"]).unwrap();
        v.put_values(&[0u64, 1, u64::MAX - 1, 42], ..).unwrap();
    }
    {
        let mut v = f.add_variable::<f64>("scalar", &[]).unwrap();
        v.put_value(3.25f64, ..).unwrap();
        v.put_attribute("units", "1").unwrap();
    }
    write_chars(&mut f, "codes", &["ABC", "de", "f", "ghijkl"]);
    let mut g = f.add_group("forecast").unwrap();
    g.add_dimension("step", 3).unwrap();
    g.add_attribute("source", "model").unwrap();
    {
        let mut v = g.add_variable::<f32>("temp", &["step", "x"]).unwrap();
        v.set_fill_value(-999.0f32).unwrap();
        v.put_attribute("units", "degC").unwrap();
        let data: Vec<f32> = (0..12).map(|i| if i == 5 { -999.0 } else { i as f32 * 1.5 }).collect();
        v.put_values(&data, (0..3, 0..4)).unwrap();
    }
    {
        let mut v = g.add_variable::<i32>("step", &["step"]).unwrap();
        v.put_values(&[0, 6, 12], ..).unwrap();
        v.put_attribute("units", "hours").unwrap();
    }
    let mut inner = g.add_group("members").unwrap();
    {
        let mut v = inner.add_variable::<i64>("member", &["x"]).unwrap();
        v.put_values(&[1i64, -2, 3, i64::MIN + 2], ..).unwrap();
    }
}

/// `NC_CHAR` element type for writing text variables.
#[repr(transparent)]
#[derive(Copy, Clone)]
pub struct NcChar(pub u8);

// SAFETY: a one-byte transparent wrapper matching NC_CHAR.
unsafe impl netcdf::types::NcTypeDescriptor for NcChar {
    fn type_descriptor() -> netcdf::types::NcVariableType {
        netcdf::types::NcVariableType::Char
    }
}

/// Writes a `(x, strlen)` char variable holding `words` (NUL-padded).
pub fn write_chars(f: &mut netcdf::FileMut, name: &str, words: &[&str]) {
    let strlen = f.dimension("strlen").unwrap().len();
    let mut v = f.add_variable::<NcChar>(name, &["x", "strlen"]).unwrap();
    let mut data = vec![NcChar(0); words.len() * strlen];
    for (i, w) in words.iter().enumerate() {
        for (j, b) in w.bytes().enumerate() {
            data[i * strlen + j] = NcChar(b);
        }
    }
    v.put_values(&data, (0..words.len(), 0..strlen)).unwrap();
}

/// A classic file with a time axis in `calendar`.
pub fn calendar_file(path: &Path, calendar: &str, units: &str, times: &[f64]) {
    let mut f = create(path, Kind::Classic);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("bnds", 2).unwrap();
    {
        let mut v = f.add_variable::<f64>("time", &["time"]).unwrap();
        v.put_attribute("units", units).unwrap();
        v.put_attribute("calendar", calendar).unwrap();
        v.put_attribute("bounds", "time_bnds").unwrap();
    }
    f.add_variable::<f64>("time_bnds", &["time", "bnds"]).unwrap();
    f.add_variable::<f32>("tas", &["time"])
        .unwrap()
        .put_attribute("units", "K")
        .unwrap();
    f.enddef().unwrap();
    let n = times.len();
    f.variable_mut("time").unwrap().put_values(times, [..n]).unwrap();
    let b: Vec<f64> = times.iter().flat_map(|t| [t - 0.5, t + 0.5]).collect();
    f.variable_mut("time_bnds")
        .unwrap()
        .put_values(&b, (0..n, 0..2))
        .unwrap();
    let d: Vec<f32> = times.iter().map(|t| 280.0 + *t as f32 * 0.1).collect();
    f.variable_mut("tas").unwrap().put_values(&d, [..n]).unwrap();
}

/// A CMIP6-style file: `time` is a fixed (not unlimited) dimension with bounds, on a
/// `lat` × `lon` grid, with float32 `tas`. `lat0` shifts the grid (for tiles).
pub fn fixed_time_file(path: &Path, kind: Kind, units: &str, times: &[f64], lat0: f32) {
    cmip_file(path, kind, "tas", units, times, lat0);
}

/// [`fixed_time_file`] holding the float32 variable `var` (CMIP6 keeps one per file).
pub fn cmip_file(path: &Path, kind: Kind, var: &str, units: &str, times: &[f64], lat0: f32) {
    let (nlat, nlon) = (3usize, 4usize);
    let mut f = create(path, kind);
    f.add_dimension("time", times.len()).unwrap();
    f.add_dimension("lat", nlat).unwrap();
    f.add_dimension("lon", nlon).unwrap();
    f.add_dimension("bnds", 2).unwrap();
    f.add_attribute("Conventions", "CF-1.7 CMIP-6.2").unwrap();
    {
        let mut v = f.add_variable::<f64>("time", &["time"]).unwrap();
        v.put_attribute("units", units).unwrap();
        v.put_attribute("calendar", "365_day").unwrap();
        v.put_attribute("axis", "T").unwrap();
        v.put_attribute("bounds", "time_bnds").unwrap();
    }
    f.add_variable::<f64>("time_bnds", &["time", "bnds"]).unwrap();
    f.add_variable::<f32>("lat", &["lat"])
        .unwrap()
        .put_attribute("units", "degrees_north")
        .unwrap();
    f.add_variable::<f32>("lon", &["lon"])
        .unwrap()
        .put_attribute("units", "degrees_east")
        .unwrap();
    {
        let mut v = f.add_variable::<f32>(var, &["time", "lat", "lon"]).unwrap();
        v.set_fill_value(1.0e20f32).unwrap();
        v.put_attribute("units", "K").unwrap();
    }
    f.enddef().unwrap();
    let n = times.len();
    f.variable_mut("time").unwrap().put_values(times, [..n]).unwrap();
    let b: Vec<f64> = times.iter().flat_map(|t| [t - 0.5, t + 0.5]).collect();
    f.variable_mut("time_bnds")
        .unwrap()
        .put_values(&b, (0..n, 0..2))
        .unwrap();
    let lat: Vec<f32> = (0..nlat).map(|i| lat0 + 10.0 * i as f32).collect();
    f.variable_mut("lat").unwrap().put_values(&lat, ..).unwrap();
    let lon: Vec<f32> = (0..nlon).map(|i| 90.0 * i as f32).collect();
    f.variable_mut("lon").unwrap().put_values(&lon, ..).unwrap();
    let data: Vec<f32> = (0..n * nlat * nlon)
        .map(|i| {
            if i % 7 == 3 {
                1.0e20
            } else {
                250.0 + (i as f32 + times[0] as f32).sin() * 20.0 + lat0 + if var == "tas" { 0.0 } else { 3.0 }
            }
        })
        .collect();
    f.variable_mut(var)
        .unwrap()
        .put_values(&data, (0..n, 0..nlat, 0..nlon))
        .unwrap();
}

/// A netCDF-4 file without time or CF attributes: `height(station)`, 3 values.
pub fn station_file(path: &Path) {
    let mut nc = create(path, Kind::Netcdf4);
    nc.add_dimension("station", 3).unwrap();
    nc.add_variable::<f32>("height", &["station"])
        .unwrap()
        .put_values(&[1.0f32, 2.0, 3.0], ..)
        .unwrap();
}

/// How one file packs its `tp` variable.
#[derive(Clone, Copy)]
pub struct Packing {
    /// `scale_factor` (written as `float` when `single`, else `double`).
    pub scale: f64,
    /// `add_offset`.
    pub offset: f64,
    /// `_FillValue`.
    pub fill: i16,
    /// Write the factors as `float`.
    pub single: bool,
}

/// A file whose `tp(time, x)` is int16 packed with `packing`, holding the raw values `raw`
/// (one row of 4 per time step); `time` is unlimited, in hours since 2000-01-01.
pub fn packed_file(path: &Path, kind: Kind, times: &[f64], packing: Packing, raw: &[i16]) {
    let mut f = create(path, kind);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("x", 4).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "hours since 2000-01-01")
        .unwrap();
    {
        let mut v = f.add_variable::<i16>("tp", &["time", "x"]).unwrap();
        v.set_fill_value(packing.fill).unwrap();
        if packing.single {
            v.put_attribute("scale_factor", packing.scale as f32).unwrap();
            v.put_attribute("add_offset", packing.offset as f32).unwrap();
        } else {
            v.put_attribute("scale_factor", packing.scale).unwrap();
            v.put_attribute("add_offset", packing.offset).unwrap();
        }
        v.put_attribute("units", "mm").unwrap();
    }
    f.enddef().unwrap();
    let n = times.len();
    f.variable_mut("time").unwrap().put_values(times, [..n]).unwrap();
    f.variable_mut("tp").unwrap().put_values(raw, (0..n, 0..4)).unwrap();
}
