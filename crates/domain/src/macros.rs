//! The string conversions every value type shares.
//!
//! Each type stores (or can produce) its canonical text, so `Display`,
//! `FromStr`, `TryFrom<String>` and `From<T> for String` are all written once
//! here in terms of the type's own `parse` and `as_str`. Serde uses the
//! `TryFrom<String>`/`Into<String>` pair, which is what keeps deserialisation
//! on the `parse` path.

macro_rules! string_conversions {
    ($ty:ty, $err:ty) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, $err> {
                <$ty>::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $err;
            fn try_from(s: String) -> Result<Self, $err> {
                <$ty>::parse(&s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $err;
            fn try_from(s: &str) -> Result<Self, $err> {
                <$ty>::parse(s)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.as_str().to_owned()
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}
