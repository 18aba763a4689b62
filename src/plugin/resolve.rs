//! Which APIProduct `request PRODUCT` means: products live in their owners' namespaces, not the
//! consumer's, so a name is looked up in the key's namespace, then across the cluster (when the
//! user may list products cluster-wide), else in the namespaces of the kubeconfig's contexts.
//! One match is used; several ask for `--product-namespace` and list the candidates.

use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::session::Session;
use crate::resources::APIProduct;
use crate::{Error, Result};

/// Where the search for a product looked, for the message when it finds none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Searched {
    /// Every namespace (the user may list products cluster-wide).
    Cluster,
    /// These namespaces only.
    Namespaces(Vec<String>),
}

/// The namespace of product `name` among the namespaces it was found in: the one, or an error
/// that says where it looked, or which candidates to choose from with `--product-namespace`.
pub fn choose(name: &str, mut found: Vec<String>, searched: &Searched) -> Result<String> {
    found.sort();
    found.dedup();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let place = match searched {
                Searched::Cluster => "any namespace".to_string(),
                Searched::Namespaces(namespaces) => format!(
                    "the namespaces you can read ({}; you may not list APIProducts cluster-wide)",
                    namespaces.join(", ")
                ),
            };
            Err(Error::Invalid(format!(
                "APIProduct {name:?} not found in {place}: pass --product-namespace NAMESPACE \
                 (`kubectl devportal products -A` lists the products you may see)"
            )))
        }
        _ => Err(Error::Invalid(format!(
            "APIProduct {name:?} exists in several namespaces ({}): pass --product-namespace \
             with one of {}",
            found
                .iter()
                .map(|ns| format!("{ns}/{name}"))
                .collect::<Vec<_>>()
                .join(", "),
            found.join(", ")
        ))),
    }
}

/// Whether the API server refused the call for lack of permission (or hides the object).
fn forbidden(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 403)
}

/// The namespace of the product `name` the user means (see the module's doc).
pub async fn product_namespace(session: &Session, name: &str) -> Result<String> {
    let here = Api::<APIProduct>::namespaced(session.client.clone(), &session.namespace);
    match here.get_opt(name).await {
        Ok(Some(_)) => return Ok(session.namespace.clone()),
        Ok(None) => {}
        Err(e) if forbidden(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let by_name = ListParams::default().fields(&format!("metadata.name={name}"));
    match Api::<APIProduct>::all(session.client.clone())
        .list(&by_name)
        .await
    {
        Ok(list) => {
            let found = list.items.iter().filter_map(|p| p.namespace()).collect();
            return choose(name, found, &Searched::Cluster);
        }
        Err(e) if forbidden(&e) => {}
        Err(e) => return Err(e.into()),
    }
    let mut searched = vec![session.namespace.clone()];
    let mut found = Vec::new();
    for namespace in &session.kubeconfig_namespaces {
        if searched.contains(namespace) {
            continue;
        }
        searched.push(namespace.clone());
        let api = Api::<APIProduct>::namespaced(session.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(_)) => found.push(namespace.clone()),
            Ok(None) => {}
            Err(e) if forbidden(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    choose(name, found, &Searched::Namespaces(searched))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_match_is_used() {
        let found = vec!["shop".to_string()];
        assert_eq!(choose("toys", found, &Searched::Cluster).unwrap(), "shop");
    }

    #[test]
    fn several_matches_list_the_candidates_and_ask_for_the_namespace() {
        let found = vec!["zoo".to_string(), "shop".to_string()];
        let error = choose("toys", found, &Searched::Cluster).unwrap_err();
        assert_eq!(
            error.to_string(),
            "APIProduct \"toys\" exists in several namespaces (shop/toys, zoo/toys): pass \
             --product-namespace with one of shop, zoo"
        );
    }

    #[test]
    fn no_match_says_where_it_looked() {
        let searched = Searched::Namespaces(vec!["team-a".into(), "shop".into()]);
        let error = choose("toys", Vec::new(), &searched)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the namespaces you can read (team-a, shop;"),
            "{error}"
        );
        assert!(error.contains("--product-namespace"), "{error}");
        let error = choose("toys", Vec::new(), &Searched::Cluster).unwrap_err();
        assert!(error.to_string().contains("not found in any namespace"));
    }
}
