//! Small closed sets stored as text (states, kinds, roles): `named!` declares one enum with one
//! name per value (`as_str`, `Display`) and one strict `FromStr`. A name we do not know is an
//! error, never a guess.

/// A name that is not one of a state's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?} ({expected})")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
    pub expected: &'static str,
}

/// Declares an enum with its names: `as_str`, `Display` and a strict `FromStr`.
#[macro_export]
macro_rules! named {
    ($(#[$meta:meta])* $what:literal, $expected:literal,
     pub enum $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The name this value has in the tables.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::names::UnknownName;

            fn from_str(name: &str) -> Result<$name, $crate::names::UnknownName> {
                match name {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::names::UnknownName {
                        what: $what,
                        name: other.to_string(),
                        expected: $expected,
                    }),
                }
            }
        }
    };
}
