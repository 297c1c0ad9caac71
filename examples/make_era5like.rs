//! Writes the ERA5-like benchmark dataset: monthly netCDF-4 files for 2020, 6-hourly,
//! with the shapes and encodings of ERA5 downloads from the CDS.
//!
//! `cargo run --release --example make_era5like -- small|medium|full DIR`
//!
//! - small: 3 files (Jan–Mar), 5° grid (latitude 37 × longitude 72);
//! - medium: 12 files, 1° grid (181 × 360);
//! - full: 12 files, 0.5° grid (361 × 720), 1464 steps, 3.8 GB uncompressed.
//!
//! Variables: `time` (int32, unlimited, hours since 1900-01-01, HDF5 chunk 512),
//! `latitude`/`longitude` (float32, CF attributes), `t2m` and `u10` (float32,
//! quantised to 2⁻⁶ K and 2⁻⁷ m/s) and `tp` (int16 packed with `scale_factor`,
//! `add_offset`, `_FillValue` and `missing_value`), each in HDF5 chunks of one time
//! step with zlib level 1 + shuffle. Values are smooth travelling waves, a seasonal and
//! a diurnal cycle plus deterministic noise: a pure function of the variant, so every
//! run writes the same files.

#[path = "../tests/common/fixtures.rs"]
#[allow(dead_code, missing_docs)]
mod fixtures;

use std::f64::consts::PI;
use std::path::Path;

/// Days from 1900-01-01 to 2020-01-01.
const DAYS_1900_TO_2020: i64 = 43_829;
const MONTH_DAYS_2020: [i64; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const FILL: i16 = -32767;
const TP_SCALE: f64 = 0.05 / 65533.0;
const TP_OFFSET: f64 = 32766.0 * TP_SCALE;

/// A small, fast, deterministic generator (SplitMix64) with normal deviates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal deviate (Box–Muller).
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (2.0 * PI * self.uniform()).cos()
    }
}

struct Grid {
    lat: Vec<f64>,
    lon: Vec<f64>,
}

fn grid(variant: &str) -> Grid {
    let (nlat, nlon, step) = match variant {
        "small" => (37, 72, 5.0),
        "medium" => (181, 360, 1.0),
        _ => (361, 720, 0.5),
    };
    Grid {
        lat: (0..nlat).map(|i| 90.0 - step * i as f64).collect(),
        lon: (0..nlon).map(|i| step * i as f64).collect(),
    }
}

/// Writes one month; returns the file's number of steps.
fn write_month(dir: &Path, g: &Grid, month: usize) -> usize {
    let first_day = DAYS_1900_TO_2020 + MONTH_DAYS_2020[..month].iter().sum::<i64>();
    let steps = MONTH_DAYS_2020[month] as usize * 4;
    let times: Vec<i32> = (0..steps).map(|i| (first_day * 24 + 6 * i as i64) as i32).collect();
    let (nlat, nlon) = (g.lat.len(), g.lon.len());
    let path = dir.join(format!("era5like_2020-{:02}.nc", month + 1));
    let tmp = path.with_extension("nc.tmp");
    let mut f = fixtures::create(&tmp, fixtures::Kind::Netcdf4);
    f.add_attribute("Conventions", "CF-1.6").unwrap();
    f.add_attribute(
        "history",
        format!("2020-{:02} synthetic ERA5-like data (nc2zarr make_era5like)", month + 1),
    )
    .unwrap();
    f.add_attribute(
        "title",
        "Synthetic ERA5-like single-level fields (benchmark data, not real)",
    )
    .unwrap();
    f.add_dimension("longitude", nlon).unwrap();
    f.add_dimension("latitude", nlat).unwrap();
    f.add_unlimited_dimension("time").unwrap();
    for (name, values, units, axis) in [
        ("longitude", &g.lon, "degrees_east", "X"),
        ("latitude", &g.lat, "degrees_north", "Y"),
    ] {
        let mut v = f.add_variable::<f32>(name, &[name]).unwrap();
        v.put_attribute("units", units).unwrap();
        v.put_attribute("long_name", name).unwrap();
        v.put_attribute("standard_name", name).unwrap();
        v.put_attribute("axis", axis).unwrap();
        let data: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        v.put_values(&data, ..).unwrap();
    }
    {
        let mut v = f.add_variable::<i32>("time", &["time"]).unwrap();
        v.set_chunking(&[512]).unwrap();
        v.put_attribute("units", "hours since 1900-01-01 00:00:00.0").unwrap();
        v.put_attribute("long_name", "time").unwrap();
        v.put_attribute("standard_name", "time").unwrap();
        v.put_attribute("calendar", "gregorian").unwrap();
        v.put_attribute("axis", "T").unwrap();
        v.put_values(&times, [..steps]).unwrap();
    }
    let dims = ["time", "latitude", "longitude"];
    for (name, units, long, standard) in [
        ("t2m", "K", "2 metre temperature", "air_temperature"),
        ("u10", "m s**-1", "10 metre U wind component", "eastward_wind"),
    ] {
        let mut v = f.add_variable::<f32>(name, &dims).unwrap();
        v.set_chunking(&[1, nlat, nlon]).unwrap();
        v.set_compression(1, true).unwrap();
        v.put_attribute("units", units).unwrap();
        v.put_attribute("long_name", long).unwrap();
        v.put_attribute("standard_name", standard).unwrap();
    }
    {
        let mut v = f.add_variable::<i16>("tp", &dims).unwrap();
        v.set_chunking(&[1, nlat, nlon]).unwrap();
        v.set_compression(1, true).unwrap();
        v.set_fill_value(FILL).unwrap();
        v.put_attribute("scale_factor", TP_SCALE).unwrap();
        v.put_attribute("add_offset", TP_OFFSET).unwrap();
        v.put_attribute("missing_value", FILL).unwrap();
        v.put_attribute("units", "m").unwrap();
        v.put_attribute("long_name", "Total precipitation").unwrap();
    }
    let mut rng = Rng(20_200_101 + month as u64);
    let coslat: Vec<f64> = g.lat.iter().map(|l| l.to_radians().cos()).collect();
    let sinlat: Vec<f64> = g.lat.iter().map(|l| l.to_radians().sin()).collect();
    let midlat: Vec<f64> = g
        .lat
        .iter()
        .map(|l| (-((l.abs() - 45.0) / 15.0).powi(2)).exp())
        .collect();
    let static_field = |i: usize, j: usize| {
        (3.0 * g.lat[i].to_radians()).sin() * (2.0 * g.lon[j].to_radians()).cos()
            + (5.0 * g.lon[j].to_radians() + 1.0).sin() * 0.5
    };
    let waves = [
        (3.0, 2.5, 5.0, 0.3),
        (4.0, 1.8, 7.5, 1.1),
        (5.0, 3.1, 4.0, 2.0),
        (6.0, 1.2, 9.0, 0.7),
        (7.0, 2.0, 11.0, 4.0),
    ];
    let (mut t2m, mut u10, mut tp) = (
        vec![0f32; nlat * nlon],
        vec![0f32; nlat * nlon],
        vec![0i16; nlat * nlon],
    );
    for (step, &hours) in times.iter().enumerate() {
        let days = f64::from(hours) / 24.0;
        let doy = days - DAYS_1900_TO_2020 as f64;
        let utc = f64::from(hours % 24);
        for i in 0..nlat {
            let season = -14.0 * sinlat[i] * (2.0 * PI * (doy - 15.0) / 366.0).cos();
            for j in 0..nlon {
                let lon = g.lon[j].to_radians();
                let (mut wave, mut dwave) = (0.0, 0.0);
                for &(k, a, period, phase) in &waves {
                    let ang = k * lon - (2.0 * PI * days / period + phase);
                    wave += a * ang.cos();
                    dwave += a * ang.sin();
                }
                let local = (utc + g.lon[j] / 15.0 - 14.0) / 24.0;
                let diurnal = 5.0 * coslat[i] * (2.0 * PI * local).cos();
                let s = static_field(i, j);
                let t = 250.0
                    + 50.0 * coslat[i].powi(2)
                    + 4.0 * s
                    + season
                    + diurnal
                    + 2.0 * midlat[i] * wave
                    + 0.25 * rng.normal();
                let u = 8.0 * (-((g.lat[i].abs() - 45.0) / 10.0).powi(2)).exp()
                    - 5.0 * (-(g.lat[i] / 12.0).powi(2)).exp()
                    + s
                    + 1.2 * midlat[i] * dwave
                    + 0.4 * rng.normal();
                let storm = (3.0 * (lon - days * 8.0 / 360.0 * 2.0 * PI)).sin() * (2.0 * g.lat[i].to_radians()).cos()
                    + 0.4 * midlat[i] * wave / 3.0
                    + 0.3 * rng.normal();
                let rain = ((storm - 1.0).max(0.0) * 0.004 * (0.5 + coslat[i])).clamp(0.0, 0.05);
                t2m[i * nlon + j] = ((t * 64.0).round() / 64.0) as f32;
                u10[i * nlon + j] = ((u * 128.0).round() / 128.0) as f32;
                tp[i * nlon + j] = ((rain - TP_OFFSET) / TP_SCALE).round() as i16;
            }
        }
        let at = (step..step + 1, 0..nlat, 0..nlon);
        f.variable_mut("t2m").unwrap().put_values(&t2m, at.clone()).unwrap();
        f.variable_mut("u10").unwrap().put_values(&u10, at.clone()).unwrap();
        f.variable_mut("tp").unwrap().put_values(&tp, at).unwrap();
    }
    drop(f);
    std::fs::rename(&tmp, &path).unwrap();
    steps
}

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "small".into());
    if !matches!(variant.as_str(), "small" | "medium" | "full") {
        eprintln!("usage: make_era5like small|medium|full DIR");
        std::process::exit(2);
    }
    let dir = args.next().unwrap_or_else(|| format!("data/era5like_{variant}"));
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create the output directory");
    let g = grid(&variant);
    let months = if variant == "small" { 3 } else { 12 };
    let mut steps = 0;
    for m in 0..months {
        steps += write_month(dir, &g, m);
    }
    let bytes = steps * g.lat.len() * g.lon.len() * (4 + 4 + 2);
    println!(
        "wrote {months} files, {steps} steps on a {}x{} grid to {}: {:.3} GB uncompressed",
        g.lat.len(),
        g.lon.len(),
        dir.display(),
        bytes as f64 / 1e9
    );
}
