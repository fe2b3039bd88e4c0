//! Signed update bundles (`ewindow-<target>-<version>.update`): what one boot slot needs,
//! its target and version, signed with a release key.
//!
//! Pure: bytes in, a verdict out; no IO but reading and writing key files. [`bundle`] holds
//! the format, building one ([`bundle::write`]) and the checks before anything is written
//! ([`bundle::verify`]); [`keys`] the release keys (an Ed25519 signing key that never enters
//! the repository or an image, and the public keys an image trusts); [`version`] the order of
//! versions. The slots, the boot counting and applying a bundle build on this.
//!
//! **Invariant:** [`bundle::verify`] never panics and accepts only a bundle signed by a
//! trusted key, for this target, newer than the running version (unless forced), with every
//! file's bytes present and matching the signed hash.

pub mod bundle;
pub mod keys;
pub mod version;
