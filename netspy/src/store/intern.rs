//! Reference-counted interning: each distinct value (process name, address, kernel symbol)
//! is stored once and named by a 4-byte [`Sym`]; a value leaves when the last event using it
//! is evicted, so the tables stay bounded by the history they serve.

use std::{hash::Hash, num::NonZeroU32};

/// Name of an interned value. `Option<Sym>` is 4 bytes too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(NonZeroU32);

impl Sym {
    fn index(self) -> usize {
        self.0.get() as usize - 1
    }

    fn from_index(index: usize) -> Option<Self> {
        u32::try_from(index + 1)
            .ok()
            .and_then(NonZeroU32::new)
            .map(Self)
    }
}

struct Slot<T> {
    value: Option<T>,
    refs: u32,
}

/// Interned values of one type.
pub struct Interner<T> {
    ids: super::Map<T, Sym>,
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Self {
            ids: super::Map::default(),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: Hash + Eq + Clone> Interner<T> {
    /// Interns `value`, taking one reference. None only if 4 billion values are live.
    pub fn intern(&mut self, value: T) -> Option<Sym> {
        self.intern_fresh(value).map(|(sym, _)| sym)
    }

    /// [`Interner::intern`], also telling whether the value is new.
    pub fn intern_fresh(&mut self, value: T) -> Option<(Sym, bool)> {
        if let Some(&sym) = self.ids.get(&value) {
            self.slots[sym.index()].refs += 1;
            return Some((sym, false));
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    value: None,
                    refs: 0,
                });
                self.slots.len() - 1
            }
        };
        let sym = Sym::from_index(index)?;
        self.slots[index] = Slot {
            value: Some(value.clone()),
            refs: 1,
        };
        self.ids.insert(value, sym);
        Some((sym, true))
    }

    /// Drops one reference; the value goes when none is left, and is returned then.
    pub fn release(&mut self, sym: Sym) -> Option<T> {
        let index = sym.index();
        let slot = self.slots.get_mut(index)?;
        slot.refs = slot.refs.saturating_sub(1);
        if slot.refs != 0 {
            return None;
        }
        let value = slot.value.take()?;
        self.ids.remove(&value);
        self.free.push(index);
        Some(value)
    }

    /// The value of a symbol.
    pub fn get(&self, sym: Sym) -> Option<&T> {
        self.slots.get(sym.index())?.value.as_ref()
    }

    /// Every live symbol with its value.
    pub fn iter(&self) -> impl Iterator<Item = (Sym, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| Some((Sym::from_index(i)?, slot.value.as_ref()?)))
    }

    /// Number of live values.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_sym_until_released() {
        let mut names: Interner<String> = Interner::default();
        let a = names.intern("curl".into()).unwrap();
        let b = names.intern("curl".into()).unwrap();
        let c = names.intern("wget".into()).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(names.get(a).map(String::as_str), Some("curl"));
        names.release(a);
        assert_eq!(
            names.get(a).map(String::as_str),
            Some("curl"),
            "one reference left"
        );
        names.release(b);
        assert_eq!(names.get(a), None);
        assert_eq!(names.len(), 1);
        // The freed slot is reused.
        let d = names.intern("dig".into()).unwrap();
        assert_eq!(d, a);
        assert_eq!(names.iter().count(), 2);
    }

    #[test]
    fn option_sym_is_four_bytes() {
        assert_eq!(size_of::<Option<Sym>>(), 4);
    }
}
