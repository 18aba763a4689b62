//! Dynamic completion, cobra's way: `kubectl-devportal __complete WORDS... CURRENT` prints the
//! candidates for the last word, one a line (`candidate<TAB>description`), then `:4` (cobra's
//! "no file completion" directive). The shell scripts of `completion bash|zsh|fish` and the
//! `kubectl_complete-devportal` helper (which kubectl ≥ 1.26 runs for `kubectl devportal <TAB>`)
//! both call it. Names come from the cluster: products, keys, requests, the product's plan
//! tiers, namespaces and the kubeconfig's contexts; a cluster that cannot be reached completes
//! nothing (and says nothing).

use std::time::Duration;

use clap::{Arg, Command, CommandFactory};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::config::Kubeconfig;
use kube::{Api, ResourceExt};

use super::Cli;
use super::output::inert;
use super::session::{Connection, Session};
use crate::resources::{APIKey, APIKeyRequest, APIProduct};

/// cobra's directive: complete only the words given, never file names.
pub const NO_FILE_COMPLETION: &str = ":4";

/// What the word being completed is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// A subcommand name.
    Subcommand,
    /// A flag of the subcommand (or a global one).
    Flag(Option<String>),
    /// The value of this flag (its long name).
    FlagValue(String),
    /// The positional argument of this subcommand.
    Positional(String),
}

/// The command line as the user has typed it so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Typed {
    /// The subcommand, once typed.
    pub subcommand: Option<String>,
    /// The flags with values typed so far (long name, value).
    pub flags: Vec<(String, String)>,
    /// The positional words after the subcommand.
    pub positionals: Vec<String>,
}

impl Typed {
    /// The value of flag `long`, if typed.
    pub fn flag(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(name, _)| name == long)
            .map(|(_, v)| v.as_str())
    }
}

fn find_arg<'a>(command: &'a Command, word: &str) -> Option<&'a Arg> {
    if let Some(long) = word.strip_prefix("--") {
        let long = long.split('=').next().unwrap_or_default();
        command.get_arguments().find(|a| a.get_long() == Some(long))
    } else {
        let short = word.strip_prefix('-')?.chars().next()?;
        command
            .get_arguments()
            .find(|a| a.get_short() == Some(short))
    }
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values() && arg.get_num_args().is_none_or(|n| n.min_values() > 0)
}

/// Reads the words before the current one and says what the current one is.
pub fn analyse(words: &[String]) -> (Typed, Want) {
    let mut root = Cli::command();
    root.build();
    let (current, before) = match words.split_last() {
        Some((current, before)) => (current.clone(), before),
        None => (String::new(), &[][..]),
    };
    let mut typed = Typed::default();
    let mut pending_flag: Option<String> = None;
    for word in before {
        let command = typed
            .subcommand
            .as_deref()
            .and_then(|s| root.find_subcommand(s))
            .unwrap_or(&root);
        if let Some(flag) = pending_flag.take() {
            typed.flags.push((flag, word.clone()));
        } else if word.starts_with('-') && word.len() > 1 {
            if let Some(arg) = find_arg(command, word).filter(|a| takes_value(a)) {
                let long = arg.get_long().unwrap_or(arg.get_id().as_str()).to_string();
                match word.split_once('=') {
                    Some((_, value)) => typed.flags.push((long, value.to_string())),
                    None => pending_flag = Some(long),
                }
            }
        } else if typed.subcommand.is_none() {
            typed.subcommand = Some(word.clone());
        } else {
            typed.positionals.push(word.clone());
        }
    }
    let want = match (pending_flag, &typed.subcommand) {
        (Some(flag), _) => Want::FlagValue(flag),
        (None, _) if current.starts_with('-') => Want::Flag(typed.subcommand.clone()),
        (None, None) => Want::Subcommand,
        (None, Some(sub)) => Want::Positional(sub.clone()),
    };
    (typed, want)
}

/// The flags of `subcommand` (and the global ones), as `--long<TAB>help`.
pub fn flags(subcommand: Option<&str>) -> Vec<String> {
    let mut root = Cli::command();
    root.build();
    let command = subcommand
        .and_then(|s| root.find_subcommand(s))
        .unwrap_or(&root);
    command
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| {
            let long = a.get_long()?;
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            Some(format!(
                "--{long}\t{}",
                help.lines().next().unwrap_or_default()
            ))
        })
        .collect()
}

/// The subcommands, as `name<TAB>about`.
pub fn subcommands() -> Vec<String> {
    Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| {
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            format!("{}\t{about}", s.get_name())
        })
        .collect()
}

/// The connection the typed flags describe, with a short timeout (completion must be quick).
fn connection(typed: &Typed) -> Connection {
    Connection {
        kubeconfig: typed.flag("kubeconfig").map(Into::into),
        context: typed.flag("context").map(Into::into),
        namespace: typed.flag("namespace").map(Into::into),
        request_timeout: Duration::from_secs(5),
        ..Connection::default()
    }
}

async fn names<K>(api: Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list_metadata(&ListParams::default())
        .await
        .map(|list| list.items.iter().map(|o| o.name_any()).collect())
        .unwrap_or_default()
}

async fn namespaces(session: &Session) -> Vec<String> {
    let listed = names(Api::<Namespace>::all(session.client.clone())).await;
    if listed.is_empty() {
        session.kubeconfig_namespaces.clone()
    } else {
        listed
    }
}

/// The plan tiers of the product typed as `request`'s argument.
async fn tiers(session: &Session, typed: &Typed) -> Vec<String> {
    let Some(product) = typed.positionals.first() else {
        return Vec::new();
    };
    let namespace = match typed.flag("product-namespace") {
        Some(ns) => ns.to_string(),
        None => match super::resolve::product_namespace(session, product).await {
            Ok(ns) => ns,
            Err(_) => return Vec::new(),
        },
    };
    Api::<APIProduct>::namespaced(session.client.clone(), &namespace)
        .get(product)
        .await
        .ok()
        .and_then(|p| p.status)
        .map(|s| s.discovered_plans.into_iter().map(|p| p.tier).collect())
        .unwrap_or_default()
}

/// The candidates for the last of `words`.
pub async fn candidates(words: &[String]) -> Vec<String> {
    let (typed, want) = analyse(words);
    let session = || async { connection(&typed).connect().await.ok() };
    match want {
        Want::Subcommand => subcommands(),
        Want::Flag(sub) => flags(sub.as_deref()),
        Want::FlagValue(flag) => match flag.as_str() {
            "output" => [
                "table",
                "wide",
                "name",
                "yaml",
                "json",
                "jsonpath=",
                "custom-columns=",
            ]
            .map(String::from)
            .to_vec(),
            "context" => {
                let file = match typed.flag("kubeconfig") {
                    Some(path) => Kubeconfig::read_from(path).ok(),
                    None => Kubeconfig::read().ok(),
                };
                file.map(|f| f.contexts.into_iter().map(|c| c.name).collect())
                    .unwrap_or_default()
            }
            "namespace" | "product-namespace" => match session().await {
                Some(session) => namespaces(&session).await,
                None => Vec::new(),
            },
            "plan" => match session().await {
                Some(session) => tiers(&session, &typed).await,
                None => Vec::new(),
            },
            _ => Vec::new(),
        },
        Want::Positional(sub) => {
            let Some(session) = session().await else {
                return Vec::new();
            };
            let (client, ns) = (session.client.clone(), session.namespace.as_str());
            match sub.as_str() {
                "request" if typed.positionals.is_empty() => {
                    let here = names(Api::<APIProduct>::namespaced(client.clone(), ns)).await;
                    let all = names(Api::<APIProduct>::all(client)).await;
                    let mut products: Vec<String> = here.into_iter().chain(all).collect();
                    products.sort();
                    products.dedup();
                    products
                }
                "reveal" | "rotate" | "status" if typed.positionals.is_empty() => {
                    names(Api::<APIKey>::namespaced(client, ns)).await
                }
                "delete" | "keys" => names(Api::<APIKey>::namespaced(client, ns)).await,
                "approve" | "deny" if typed.positionals.is_empty() => {
                    names(Api::<APIKeyRequest>::namespaced(client, ns)).await
                }
                "completion" => ["bash", "zsh", "fish"].map(String::from).to_vec(),
                _ => Vec::new(),
            }
        }
    }
}

/// What `__complete` prints: the candidates starting with the current word, then the directive.
pub fn render(current: &str, candidates: &[String]) -> String {
    let mut out: String = candidates
        .iter()
        .filter(|c| c.starts_with(current))
        .map(|c| match c.split_once('\t') {
            Some((word, about)) => format!("{}\t{}\n", inert(word), inert(about)),
            None => format!("{}\n", inert(c)),
        })
        .collect();
    out.push_str(NO_FILE_COMPLETION);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let mut words: Vec<String> = line.split(' ').map(String::from).collect();
        if line.is_empty() {
            words = vec![String::new()];
        }
        words
    }

    #[test]
    fn the_typed_line_says_what_to_complete() {
        assert_eq!(analyse(&words("")).1, Want::Subcommand);
        assert_eq!(analyse(&words("-n shop re")).1, Want::Subcommand);
        assert_eq!(
            analyse(&words("request ")).1,
            Want::Positional("request".into())
        );
        let (typed, want) = analyse(&words("request toys --product-namespace shop --plan "));
        assert_eq!(want, Want::FlagValue("plan".into()));
        assert_eq!(typed.positionals, ["toys"]);
        assert_eq!(typed.flag("product-namespace"), Some("shop"));
        assert_eq!(
            analyse(&words("keys -n ")).1,
            Want::FlagValue("namespace".into())
        );
        assert_eq!(
            analyse(&words("keys --all-namespaces ")).1,
            Want::Positional("keys".into()),
            "a switch takes no value"
        );
        assert_eq!(
            analyse(&words("status --")).1,
            Want::Flag(Some("status".into()))
        );
    }

    #[test]
    fn the_output_is_cobras() {
        let candidates = vec!["products\tList".to_string(), "request\tRequest".into()];
        assert_eq!(render("pr", &candidates), "products\tList\n:4\n");
        assert!(subcommands().iter().any(|s| s.starts_with("status\t")));
        assert!(
            flags(Some("request"))
                .iter()
                .any(|f| f.starts_with("--plan\t"))
        );
    }
}
