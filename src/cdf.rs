//! Truncation check for classic-format files (CDF-1, CDF-2, CDF-5).
//!
//! netCDF-C opens a classic file whose data section was cut short and returns zeros
//! for the missing bytes, silently. nc2zarr parses the header itself (the format is
//! small and fully specified) and computes where the last value of the last variable
//! ends; a shorter file is refused before anything is written.

/// Tags of the header lists.
const NC_DIMENSION: u32 = 0x0A;
const NC_VARIABLE: u32 = 0x0B;
const NC_ATTRIBUTE: u32 = 0x0C;
/// `numrecs` of a file still being written in streaming mode (not checked).
const STREAMING: u64 = 0xFFFF_FFFF;

/// The most bytes a header is read to: real headers take kilobytes, a few megabytes
/// with very many attributes; a longer one is a corrupt count.
const MAX_HEADER_BYTES: u64 = 64 << 20;

/// Why a header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header goes on past the bytes given: it needs at least this many.
    #[error("the header needs at least {0} bytes")]
    Short(u64),
    /// The header is not valid.
    #[error("{0}")]
    Corrupt(String),
}

impl From<&str> for HeaderError {
    fn from(message: &str) -> Self {
        HeaderError::Corrupt(message.to_string())
    }
}

impl From<String> for HeaderError {
    fn from(message: String) -> Self {
        HeaderError::Corrupt(message)
    }
}

/// Reads big-endian fields of a CDF header.
struct Header<'a> {
    bytes: &'a [u8],
    at: usize,
    version: u8,
}

impl Header<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], HeaderError> {
        let Some(end) = self.at.checked_add(n) else {
            return Err(HeaderError::Short(u64::MAX));
        };
        if end > self.bytes.len() {
            return Err(HeaderError::Short(end as u64));
        }
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u64, HeaderError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")) as u64)
    }

    fn u64(&mut self) -> Result<u64, HeaderError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// A count or length: 8 bytes in CDF-5, else 4.
    fn non_neg(&mut self) -> Result<u64, HeaderError> {
        if self.version == 5 { self.u64() } else { self.u32() }
    }

    /// A variable's data offset: 4 bytes in CDF-1, else 8.
    fn offset(&mut self) -> Result<u64, HeaderError> {
        if self.version == 1 { self.u32() } else { self.u64() }
    }

    /// Skips a name (count, bytes, padding to 4).
    fn name(&mut self) -> Result<(), HeaderError> {
        let n = self.non_neg()? as usize;
        self.take(n.next_multiple_of(4)).map(|_| ())
    }

    /// The tag and element count of a list (ABSENT is zero and zero).
    fn list(&mut self, tag: u32) -> Result<u64, HeaderError> {
        let found = self.u32()?;
        let n = self.non_neg()?;
        if found != tag as u64 && !(found == 0 && n == 0) {
            return Err(format!("bad list tag {found:#x} at byte {}", self.at).into());
        }
        Ok(n)
    }

    fn attributes(&mut self) -> Result<(), HeaderError> {
        for _ in 0..self.list(NC_ATTRIBUTE)? {
            self.name()?;
            let size = type_size(self.u32()?)?;
            let n = self.non_neg()?;
            let bytes = n.checked_mul(size).ok_or("attribute size overflows")?;
            self.take((bytes as usize).next_multiple_of(4))?;
        }
        Ok(())
    }
}

/// Bytes per value of a classic type code.
fn type_size(code: u64) -> Result<u64, String> {
    Ok(match code {
        1 | 2 | 7 => 1,
        3 | 8 => 2,
        4 | 5 | 9 => 4,
        6 | 10 | 11 => 8,
        _ => return Err(format!("unknown type code {code}")),
    })
}

/// For a classic-format file (`bytes` from its start, at least its whole header), the
/// number of bytes its data needs. `None` for other formats and streaming files;
/// [`HeaderError::Short`] when `bytes` end inside the header.
pub fn required_size(bytes: &[u8]) -> Result<Option<u64>, HeaderError> {
    let version = match bytes {
        [b'C', b'D', b'F', v @ (1 | 2 | 5), ..] => *v,
        _ => return Ok(None),
    };
    let mut h = Header { bytes, at: 4, version };
    let numrecs = h.non_neg()?;
    if (version == 5 && numrecs == u64::MAX) || (version != 5 && numrecs == STREAMING) {
        return Ok(None);
    }
    let mut dims = Vec::new();
    for _ in 0..h.list(NC_DIMENSION)? {
        h.name()?;
        dims.push(h.non_neg()?);
    }
    h.attributes()?;
    // (offset, bytes of one record or of the whole variable, is a record variable)
    let mut vars = Vec::new();
    for _ in 0..h.list(NC_VARIABLE)? {
        h.name()?;
        let ndims = h.non_neg()?;
        let mut record = false;
        let mut values = 1u64;
        for k in 0..ndims {
            let id = h.non_neg()? as usize;
            let len = *dims.get(id).ok_or_else(|| format!("dimension id {id} out of range"))?;
            if k == 0 && len == 0 {
                record = true;
            } else {
                values = values.checked_mul(len).ok_or("variable size overflows")?;
            }
        }
        h.attributes()?;
        let size = type_size(h.u32()?)?;
        let _vsize = h.non_neg()?;
        let begin = h.offset()?;
        let bytes = values.checked_mul(size).ok_or("variable size overflows")?;
        vars.push((begin, bytes, record));
    }
    let records: Vec<u64> = vars.iter().filter(|v| v.2).map(|v| v.1).collect();
    // Record variables are interleaved per record, each padded to 4 bytes unless it is
    // the only one.
    let recsize: u64 = match records.as_slice() {
        [one] => *one,
        many => many.iter().map(|b| b.next_multiple_of(4)).sum(),
    };
    let mut end = h.at as u64;
    for (begin, bytes, record) in vars {
        let last = match record {
            true if numrecs == 0 || bytes == 0 => continue,
            true => begin + (numrecs - 1) * recsize + bytes,
            false => begin + bytes,
        };
        end = end.max(last);
    }
    Ok(Some(end))
}

/// Checks that the classic-format file at `path` holds all the data its header
/// describes; an error says what is missing.
pub fn check_complete(path: &std::path::Path) -> Result<(), String> {
    use std::io::{Read, Seek};
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(()); // reported by the open that follows
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    // Headers are small; read more only as far as one says it goes, within the file
    // and MAX_HEADER_BYTES (a corrupt count may claim any length).
    let mut head = Vec::new();
    let mut want: u64 = 64 << 10;
    loop {
        head.clear();
        if let Err(e) = (&mut file).take(want).read_to_end(&mut head) {
            return Err(format!("reading its header: {e}"));
        }
        // Fewer bytes than asked for: the file ends there (whatever its size said).
        let have = head.len() as u64;
        let ends = if have < want { have } else { size };
        match required_size(&head) {
            Err(HeaderError::Short(needed)) if needed > ends => {
                return Err(format!(
                    "corrupt or truncated classic NetCDF header: it runs to byte {needed} but the file has {ends}"
                ));
            }
            Err(HeaderError::Short(needed)) if needed > MAX_HEADER_BYTES => {
                return Err(format!(
                    "corrupt classic NetCDF header: it claims to run to byte {needed}, beyond any real header"
                ));
            }
            // Within the file (so beyond what was read): read that far.
            Err(HeaderError::Short(needed)) => want = needed.max(want * 4).min(MAX_HEADER_BYTES),
            Err(e) => return Err(format!("corrupt classic NetCDF header: {e}")),
            Ok(None) => return Ok(()),
            Ok(Some(needed)) if needed > size => {
                return Err(format!(
                    "truncated: its header describes {needed} bytes but the file has {size}; re-download or regenerate it"
                ));
            }
            Ok(Some(_)) => return Ok(()),
        }
        let _ = file.rewind();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_formats_are_not_checked() {
        assert_eq!(required_size(b"\x89HDF\r\n\x1a\n"), Ok(None));
        assert_eq!(required_size(b"hello"), Ok(None));
    }

    #[test]
    fn garbage_after_the_magic_is_an_error_not_a_panic() {
        for n in 0..64u8 {
            let mut bytes = b"CDF\x02".to_vec();
            bytes.extend((0..n).map(|i| i.wrapping_mul(37)));
            let _ = required_size(&bytes);
        }
        assert!(required_size(b"CDF\x01\0\0\0\0\0\0\0\x0a\xff\xff\xff\xff").is_err());
    }

    #[test]
    fn a_header_is_read_as_far_as_it_goes_within_the_file_and_real_sizes() {
        // One dimension whose name claims `name_len` bytes.
        let header = |name_len: u32| {
            [
                b"CDF\x01".as_slice(),
                &[0, 0, 0, 1, 0, 0, 0, 0x0a, 0, 0, 0, 1],
                &name_len.to_be_bytes(),
            ]
            .concat()
        };
        assert_eq!(required_size(&header(100)), Err(HeaderError::Short(120)));
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, name_len: u32, size: u64| {
            let path = dir.path().join(name);
            std::fs::write(&path, header(name_len)).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(size)
                .unwrap();
            path
        };
        let e = check_complete(&file("past-end.nc", 1000, 100)).unwrap_err();
        assert!(e.contains("runs to byte 1020 but the file has 100"), "{e}");
        // 2 GiB claimed in an 8 GiB (sparse) file: refused without reading that much.
        let started = std::time::Instant::now();
        let e = check_complete(&file("huge.nc", 0x7fff_fff0, 8 << 30)).unwrap_err();
        assert!(e.contains("beyond any real header"), "{e}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
