//! How input files differ, and what a conversion does about each difference.

/// What convert does about a drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing: it does not change the stored values (source chunking, compression).
    NoEffect,
    /// The first file's value is kept, with a note (descriptive attributes).
    KeepFirst,
    /// Values are re-encoded into the first file's units.
    ReEncode,
    /// The variable is stored unpacked, each file decoded with its own attributes.
    Unpack,
    /// The files hold different variables: each set is concatenated and the sets merged.
    Merge,
    /// Strings of differing lengths are padded with NUL bytes to the longest.
    Pad,
    /// The files are refused: they do not form one dataset this way.
    Refuse,
}

impl Action {
    /// The word shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::NoEffect => "no effect",
            Action::KeepFirst => "keep first",
            Action::ReEncode => "re-encode",
            Action::Unpack => "unpack",
            Action::Merge => "merge",
            Action::Pad => "pad",
            Action::Refuse => "refuse",
        }
    }
}

/// One value an aspect takes, and the files that hold it.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftGroup {
    /// The value, as shown.
    pub value: String,
    /// How many files hold it.
    pub files: usize,
    /// The first few of them.
    pub examples: Vec<String>,
}

/// One aspect of the inputs that differs between files.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    /// `chunking`, `compression`, `packing`, `fill value`, `type`, `units`, `calendar`,
    /// `attribute`, `variables`, `dimension`, `coordinate values`, `concat axis`.
    pub category: &'static str,
    /// Where: a variable path, a group (`/`, `/g`) or a dimension.
    pub location: String,
    /// The attribute or aspect, when the category alone does not say.
    pub item: String,
    /// The values it takes, most common first.
    pub groups: Vec<DriftGroup>,
    /// What convert does about it.
    pub action: Action,
}
