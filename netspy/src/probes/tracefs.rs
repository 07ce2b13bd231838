//! tracefs: mounted when missing, and tracepoint record layouts read from its format files.

use std::{collections::HashMap, path::PathBuf};

use super::ProbeError;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// The tracefs root, mounting it at /sys/kernel/tracing when neither usual place has it
/// (fresh VMs boot without it, and aya's tracepoint attach needs it).
pub fn ensure_mounted() -> Result<PathBuf, ProbeError> {
    for root in [TRACEFS, DEBUGFS_TRACING] {
        if PathBuf::from(root).join("events").is_dir() {
            return Ok(root.into());
        }
    }
    nix::mount::mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| {
        ProbeError::Tracefs(format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed: {e}"
        ))
    })?;
    tracing::info!("mounted tracefs at {TRACEFS}");
    Ok(TRACEFS.into())
}

/// Field name -> (offset, size) of one tracepoint's record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Format {
    fields: HashMap<String, (u32, u32)>,
}

impl Format {
    /// Reads `events/<category>/<name>/format` under the tracefs root.
    pub fn read(root: &std::path::Path, category: &str, name: &str) -> Result<Self, ProbeError> {
        let path = root.join("events").join(category).join(name).join("format");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ProbeError::Tracefs(format!("reading {}: {e}", path.display())))?;
        Ok(Self::parse(&text))
    }

    /// Like [`Format::read`], but None when the tracepoint does not exist on this kernel
    /// (e.g. `sys_exit_accept` where only `accept4` is a syscall).
    pub fn read_optional(
        root: &std::path::Path,
        category: &str,
        name: &str,
    ) -> Result<Option<Self>, ProbeError> {
        if root.join("events").join(category).join(name).is_dir() {
            Self::read(root, category, name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Parses a format file (`\tfield:unsigned short sport;\toffset:24;\tsize:2;\tsigned:0;`).
    pub fn parse(text: &str) -> Self {
        let fields = text
            .lines()
            .filter_map(|line| {
                let mut decl = None;
                let mut offset = None;
                let mut size = None;
                for part in line.trim().split(';') {
                    let part = part.trim();
                    if let Some(d) = part.strip_prefix("field:") {
                        decl = Some(d);
                    } else if let Some(o) = part.strip_prefix("offset:") {
                        offset = o.parse().ok();
                    } else if let Some(s) = part.strip_prefix("size:") {
                        size = s.parse().ok();
                    }
                }
                // "const void * skbaddr", "__u8 saddr[4]": the name is the last word.
                let name = decl?.rsplit([' ', '*']).next()?.split('[').next()?;
                Some((name.to_owned(), (offset?, size?)))
            })
            .collect();
        Self { fields }
    }

    /// Offset of a field, checking its size.
    pub fn offset(&self, field: &str, size: u32) -> Result<u32, String> {
        match self.fields.get(field) {
            Some(&(offset, got)) if got == size => Ok(offset),
            Some(&(_, got)) => Err(format!("field {field} is {got} bytes, expected {size}")),
            None => Err(format!("no field {field}")),
        }
    }

    /// Offset of an optional field (absent on older kernels).
    pub fn optional_offset(&self, field: &str, size: u32) -> Result<Option<u32>, String> {
        match self.fields.contains_key(field) {
            true => self.offset(field, size).map(Some),
            false => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KFREE_SKB: &str = "name: kfree_skb
ID: 1634
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:void * rx_sk;\toffset:24;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:32;\tsize:2;\tsigned:0;
\tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:40;\tsize:4;\tsigned:0;

print fmt: \"skbaddr=%p\", REC->skbaddr
";

    #[test]
    fn parses_offsets_and_sizes() {
        let f = Format::parse(KFREE_SKB);
        assert_eq!(f.offset("skbaddr", 8), Ok(8));
        assert_eq!(f.offset("rx_sk", 8), Ok(24));
        assert_eq!(f.offset("reason", 4), Ok(36));
        assert_eq!(f.offset("saddr", 4), Ok(40));
        assert_eq!(f.optional_offset("missing", 8), Ok(None));
    }

    #[test]
    fn wrong_size_and_missing_field_are_errors() {
        let f = Format::parse(KFREE_SKB);
        assert_eq!(
            f.offset("reason", 8),
            Err("field reason is 4 bytes, expected 8".into())
        );
        assert_eq!(f.offset("nope", 8), Err("no field nope".into()));
    }
}
