//! Kernel symbols from `/proc/kallsyms`, to name drop locations (`tcp_v4_rcv+0x91`).

use std::path::Path;

/// Sorted kernel text symbols. Empty when addresses are hidden (`kptr_restrict`, no root):
/// locations are then shown as raw addresses.
#[derive(Clone, Debug, Default)]
pub struct Kallsyms {
    symbols: Vec<(u64, Box<str>)>,
}

impl Kallsyms {
    /// Reads `/proc/kallsyms`; an unreadable file gives an empty table.
    pub fn load() -> Self {
        Self::read(Path::new("/proc/kallsyms"))
    }

    fn read(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) => {
                tracing::warn!(
                    "cannot read {}: {e}; drop locations stay numeric",
                    path.display()
                );
                Self::default()
            }
        }
    }

    /// Parses kallsyms text (`ffffffff81000000 T _stext [module]`), keeping text symbols.
    pub fn parse(text: &str) -> Self {
        let mut symbols: Vec<(u64, Box<str>)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let addr = u64::from_str_radix(fields.next()?, 16).ok()?;
                let kind = fields.next()?;
                let name = fields.next()?;
                (addr != 0 && matches!(kind, "t" | "T")).then(|| (addr, name.into()))
            })
            .collect();
        symbols.sort_unstable_by_key(|(addr, _)| *addr);
        Self { symbols }
    }

    /// `symbol+0xoffset` for an address, or the address in hex when no symbol covers it.
    pub fn resolve(&self, addr: u64) -> String {
        match self.symbols.partition_point(|(start, _)| *start <= addr) {
            0 => format!("{addr:#x}"),
            i => {
                let (start, name) = &self.symbols[i - 1];
                format!("{name}+{:#x}", addr - start)
            }
        }
    }

    /// Number of symbols known.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// True when no symbol is known.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
ffffffff81a00000 T tcp_v4_rcv
ffffffff81900000 t nft_do_chain\t[nf_tables]
ffffffff81b00000 D some_data
0000000000000000 T hidden
";

    #[test]
    fn resolve_names_the_enclosing_text_symbol() {
        let syms = Kallsyms::parse(SAMPLE);
        assert_eq!(syms.len(), 2);
        assert_eq!(syms.resolve(0xffffffff81a00091), "tcp_v4_rcv+0x91");
        assert_eq!(syms.resolve(0xffffffff819003e8), "nft_do_chain+0x3e8");
        assert_eq!(syms.resolve(0x1000), "0x1000");
    }

    #[test]
    fn hidden_addresses_give_an_empty_table() {
        assert!(Kallsyms::parse("0000000000000000 T tcp_v4_rcv\n").is_empty());
    }
}
