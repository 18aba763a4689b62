//! `-w/--watch` of `keys` and `requests`: after the listing, one table row (without a header,
//! as kubectl prints it) for every change to a listed kind of object, until interrupted.

use futures::StreamExt;
use kube::Api;
use kube::runtime::watcher;

use super::listing::ListArgs;
use super::output::{self, Table};
use crate::{Error, Result};

/// Follows the objects of `api` (with the listing's label selector) and prints `table(&[o])`'s
/// row for each one created, changed or deleted after the listing (none when the table is
/// empty: an object the command leaves out).
pub async fn follow<K>(api: Api<K>, args: &ListArgs, table: impl Fn(&K) -> Table) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut config = watcher::Config::default();
    if let Some(selector) = &args.selector {
        config = config.labels(selector);
    }
    let mut events = std::pin::pin!(watcher(api, config));
    let mut listed = false;
    while let Some(event) = events.next().await {
        match event.map_err(|e| Error::Invalid(format!("watching: {e}")))? {
            watcher::Event::InitDone => listed = true,
            watcher::Event::Apply(object) | watcher::Event::Delete(object) if listed => {
                let row = table(&object);
                if !row.is_empty() {
                    output::emit(&row.render_with("", false))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
