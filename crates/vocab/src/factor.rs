//! The vocabulary of ImageNet-X: its 16 factors of variation and 17 metaclasses.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $all:ident, $count:literal, [$($variant:ident => $text:literal),+ $(,)?]
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in the paper toolkit's order (its column order in tables).
            pub const $all: [$name; $count] = [$($name::$variant),+];

            /// The name used in the annotation files and in the toolkit's tables.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Position in the toolkit's order.
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName { kind: stringify!($name), name: s.to_string() }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }
    };
}

named_enum!(
    /// A factor of variation annotated in ImageNet-X, in the order of the toolkit's `FACTORS`.
    Factor, ALL, 16, [
        Pose => "pose",
        Background => "background",
        Pattern => "pattern",
        Color => "color",
        Smaller => "smaller",
        Shape => "shape",
        PartialView => "partial_view",
        Subcategory => "subcategory",
        Texture => "texture",
        Larger => "larger",
        Darker => "darker",
        ObjectBlocking => "object_blocking",
        PersonBlocking => "person_blocking",
        Style => "style",
        Brighter => "brighter",
        MultipleObjects => "multiple_objects",
    ]
);

named_enum!(
    /// A metaclass: the 16 named groups of ImageNet classes the toolkit keeps, and `other`
    /// for every class outside them, in the order of the toolkit's `METACLASSES`.
    Metaclass, ALL, 17, [
        Device => "device",
        Dog => "dog",
        Commodity => "commodity",
        Bird => "bird",
        Structure => "structure",
        Covering => "covering",
        WheeledVehicle => "wheeled_vehicle",
        Food => "food",
        Equipment => "equipment",
        Insect => "insect",
        Vehicle => "vehicle",
        Furniture => "furniture",
        Primate => "primate",
        Vessel => "vessel",
        Snake => "snake",
        NaturalObject => "natural_object",
        Other => "other",
    ]
);

impl Metaclass {
    /// The metaclass the toolkit assigns to a name from the 100-metaclass mapping: the 16
    /// kept names map to themselves, every other name to [`Metaclass::Other`].
    pub fn from_mapping_name(name: &str) -> Metaclass {
        name.parse().unwrap_or(Metaclass::Other)
    }
}

/// A name that is not one of the known factors or metaclasses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    kind: &'static str,
    name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.kind.to_lowercase(), self.name)
    }
}

impl std::error::Error for UnknownName {}

/// The set of factors annotated for one image (a bit per [`Factor`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FactorSet(u16);

impl FactorSet {
    /// The empty set.
    pub const EMPTY: FactorSet = FactorSet(0);

    /// The set as bits, bit `i` for the factor of index `i` (the toolkit's order).
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// The set with these bits (every `u16` is a valid set: there are 16 factors).
    pub const fn from_bits(bits: u16) -> Self {
        FactorSet(bits)
    }

    /// Whether `factor` is in the set.
    pub fn contains(self, factor: Factor) -> bool {
        self.0 & (1 << factor.index()) != 0
    }

    /// Adds `factor` to the set.
    pub fn insert(&mut self, factor: Factor) {
        self.0 |= 1 << factor.index();
    }

    /// Number of factors in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether no factor is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The factors in the set, in the toolkit's order.
    pub fn iter(self) -> impl Iterator<Item = Factor> {
        // Bit `i` is `Factor::ALL[i]`: walking the set bits upwards is the toolkit's order.
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let index = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(Factor::ALL[index])
        })
    }
}

impl Serialize for FactorSet {
    /// As the list of factor names.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl FromIterator<Factor> for FactorSet {
    fn from_iter<I: IntoIterator<Item = Factor>>(iter: I) -> Self {
        let mut set = FactorSet::EMPTY;
        for factor in iter {
            set.insert(factor);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_toolkit_order() {
        let names: Vec<&str> = Factor::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names[0], "pose");
        assert_eq!(names[15], "multiple_objects");
        for factor in Factor::ALL {
            assert_eq!(factor.name().parse::<Factor>(), Ok(factor));
        }
        assert_eq!(Metaclass::ALL[16], Metaclass::Other);
        assert!("posture".parse::<Factor>().is_err());
    }

    #[test]
    fn unkept_metaclass_names_become_other() {
        assert_eq!(Metaclass::from_mapping_name("dog"), Metaclass::Dog);
        assert_eq!(Metaclass::from_mapping_name("fish"), Metaclass::Other);
    }

    #[test]
    fn factor_set_holds_bits() {
        let set: FactorSet = [Factor::Pose, Factor::MultipleObjects]
            .into_iter()
            .collect();
        assert!(set.contains(Factor::Pose));
        assert!(!set.contains(Factor::Style));
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Factor::Pose, Factor::MultipleObjects]
        );
    }
}
