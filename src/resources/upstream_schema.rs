//! The schema of `APIProduct.status.discoveredAuthScheme` as kuadrant-operator publishes it
//! (`bundle/manifests/devportal.kuadrant.io_apiproducts.yaml` of Kuadrant/kuadrant-operator @
//! ae698811cdbec09e1bb927678420967d31d09194, Apache-2.0, copied as JSON into
//! `upstream/discovered_auth_scheme.json`): Kuadrant's AuthPolicy rule types (authentication,
//! authorization, callbacks, metadata, response). devportal's CRD carries it unchanged, so a front
//! end written against upstream's CRD finds every field with its type; tests/it/upstream_schema.rs
//! checks the generated CRDs against upstream's field list.

use schemars::{Schema, SchemaGenerator};

const DISCOVERED_AUTH_SCHEME: &str = include_str!("upstream/discovered_auth_scheme.json");

/// The schema of `status.discoveredAuthScheme`, with devportal's description.
pub fn discovered_auth_scheme(_: &mut SchemaGenerator) -> Schema {
    let mut value: serde_json::Value =
        serde_json::from_str(DISCOVERED_AUTH_SCHEME).expect("the embedded schema is JSON");
    value["description"] = "The rules of the AuthPolicy in force on the product's route (its \
        defaults, rules and overrides merged, rule by name), in Kuadrant's AuthPolicy schema."
        .into();
    value["nullable"] = true.into();
    Schema::try_from(value).expect("the embedded schema is an object")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_schema_has_every_section_of_an_authpolicys_rules() {
        let schema = super::discovered_auth_scheme(&mut schemars::SchemaGenerator::default());
        let properties = schema.get("properties").unwrap().as_object().unwrap();
        let sections: Vec<_> = properties.keys().map(String::as_str).collect();
        assert_eq!(
            sections,
            [
                "authentication",
                "authorization",
                "callbacks",
                "metadata",
                "response"
            ]
        );
    }
}
