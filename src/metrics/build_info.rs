//! `devportal_build_info{version, revision}`: always 1, labelled with the crate version and the git
//! revision the binary was built from (`unknown` when built without git; see build.rs).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The version devportal reports (Cargo.toml's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision devportal was built from, or `unknown`.
pub const REVISION: &str = env!("DEVPORTAL_REVISION");

/// The labels of `devportal_build_info`: build constants, one series per binary.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version, e.g. `0.1.0`.
    pub version: &'static str,
    /// The git revision (12 hex digits) or `unknown`.
    pub revision: &'static str,
}

/// Registers `build_info` (under the registry's prefix) with its one series set to 1.
pub(super) fn register(registry: &mut Registry) {
    let family = Family::<BuildLabels, Gauge>::default();
    family
        .get_or_create(&BuildLabels {
            version: VERSION,
            revision: REVISION,
        })
        .set(1);
    registry.register(
        "build_info",
        "Always 1; the version and git revision of the running devportal",
        family,
    );
}
