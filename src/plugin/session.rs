//! Which cluster, as whom and in which namespace: kubectl's own connection flags (`--kubeconfig`,
//! `--context`, `--cluster`, `--user`, `-n`, `--server`, `--token`, `--as`, `--as-group`,
//! `--certificate-authority`, `--insecure-skip-tls-verify`, `--request-timeout`), applied to the
//! user's kubeconfig before kube-rs's own loader ([`KubeConfigOptions`], [`Config`]) reads it, so
//! they mean what they mean to kubectl.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kube::config::{AuthInfo, Cluster, KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::{Error, Result};

/// The connection flags every subcommand takes.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,

    /// The kubeconfig cluster to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,

    /// The kubeconfig user to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,

    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// The API server's address, instead of the cluster's.
    #[arg(short = 's', long, global = true, value_name = "URL")]
    pub server: Option<String>,

    /// A bearer token to authenticate with, instead of the user's credentials.
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// The user to impersonate.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub impersonate: Option<String>,

    /// A group to impersonate (repeat for several).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub impersonate_groups: Vec<String>,

    /// A PEM file of the certificate authorities to trust for the API server.
    #[arg(long, global = true, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,

    /// Do not check the API server's certificate (insecure).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,

    /// How long to wait for each answer of the API server (`0s`: no limit).
    #[arg(long, global = true, value_name = "DURATION", default_value = "20s",
          value_parser = crate::flags::parse_duration)]
    pub request_timeout: Duration,
}

/// A client of the chosen cluster and the namespace commands work in.
pub struct Session {
    /// The client, authenticated as the kubeconfig's user.
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// The API server's address, for messages.
    pub server: String,
    /// The connection flags the user gave that a hint must repeat to be runnable as written
    /// (` -n team-a --context prod`), or empty.
    pub flags: String,
    /// The namespaces the kubeconfig's contexts name: where to look for a product when the user
    /// may not list them cluster-wide.
    pub kubeconfig_namespaces: Vec<String>,
}

impl Connection {
    /// Reads the kubeconfig, applies the flags and builds the client.
    pub async fn connect(&self) -> Result<Session> {
        let file = match &self.kubeconfig {
            Some(path) => Some(Kubeconfig::read_from(path).map_err(|e| {
                Error::Config(format!("reading kubeconfig {}: {e}", path.display()))
            })?),
            None => Kubeconfig::read().ok(),
        };
        let (mut config, kubeconfig_namespaces) = match file {
            Some(mut file) => {
                let namespaces = context_namespaces(&file);
                self.override_kubeconfig(&mut file);
                let options = KubeConfigOptions {
                    context: self.context.clone(),
                    cluster: self.cluster.clone(),
                    user: self.user.clone(),
                };
                let config = Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| Error::Config(format!("kubeconfig: {e}")))?;
                (config, namespaces)
            }
            // No kubeconfig: the pod's ServiceAccount, as kubectl does.
            None => {
                let mut config = Config::incluster().map_err(|e| {
                    Error::Config(format!(
                        "no kubeconfig ($KUBECONFIG, ~/.kube/config) and not in a pod: {e}"
                    ))
                })?;
                self.override_config(&mut config)?;
                (config, Vec::new())
            }
        };
        let timeout = (!self.request_timeout.is_zero()).then_some(self.request_timeout);
        config.connect_timeout = timeout;
        config.read_timeout = timeout;
        config.write_timeout = timeout;
        config.reset_reader_on_write = true;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        Ok(Session {
            client: Client::try_from(config)?,
            namespace,
            server: server.trim_end_matches('/').to_string(),
            flags: self.repeated_flags(),
            kubeconfig_namespaces,
        })
    }

    /// The flags a hint repeats: `--kubeconfig`, `--context`, `-n` as given, each ` --flag value`.
    pub fn repeated_flags(&self) -> String {
        let mut flags = String::new();
        if let Some(path) = &self.kubeconfig {
            flags.push_str(&format!(" --kubeconfig {}", path.display()));
        }
        if let Some(context) = &self.context {
            flags.push_str(&format!(" --context {context}"));
        }
        if let Some(namespace) = &self.namespace {
            flags.push_str(&format!(" -n {namespace}"));
        }
        flags
    }

    /// Puts the flags into the cluster and user entries the chosen context uses.
    fn override_kubeconfig(&self, file: &mut Kubeconfig) {
        let context_name = self
            .context
            .clone()
            .or_else(|| file.current_context.clone());
        let context = file
            .contexts
            .iter()
            .find(|c| Some(&c.name) == context_name.as_ref())
            .and_then(|c| c.context.clone());
        let cluster_name = self
            .cluster
            .clone()
            .or_else(|| context.as_ref().map(|c| c.cluster.clone()));
        let user_name = self
            .user
            .clone()
            .or_else(|| context.as_ref().and_then(|c| c.user.clone()));
        if let Some(name) = cluster_name {
            for entry in file.clusters.iter_mut().filter(|c| c.name == name) {
                self.override_cluster(entry.cluster.get_or_insert_with(Cluster::default));
            }
        }
        if let Some(name) = user_name {
            for entry in file.auth_infos.iter_mut().filter(|u| u.name == name) {
                self.override_user(entry.auth_info.get_or_insert_with(AuthInfo::default));
            }
        }
    }

    fn override_cluster(&self, cluster: &mut Cluster) {
        if let Some(server) = &self.server {
            cluster.server = Some(server.clone());
        }
        if let Some(path) = &self.certificate_authority {
            cluster.certificate_authority = Some(path.display().to_string());
            cluster.certificate_authority_data = None;
        }
        if self.insecure_skip_tls_verify {
            cluster.insecure_skip_tls_verify = Some(true);
            cluster.certificate_authority = None;
            cluster.certificate_authority_data = None;
        }
    }

    fn override_user(&self, user: &mut AuthInfo) {
        if let Some(token) = &self.token {
            // Built through serde: kube-rs keeps the token as a redacted secret string.
            let with_token: AuthInfo =
                serde_json::from_value(serde_json::json!({ "token": token })).unwrap_or_default();
            *user = AuthInfo {
                impersonate: user.impersonate.take(),
                impersonate_groups: user.impersonate_groups.take(),
                ..with_token
            };
        }
        if let Some(name) = &self.impersonate {
            user.impersonate = Some(name.clone());
        }
        if !self.impersonate_groups.is_empty() {
            user.impersonate_groups = Some(self.impersonate_groups.clone());
        }
    }

    /// The flags applied to an in-cluster configuration.
    fn override_config(&self, config: &mut Config) -> Result<()> {
        if let Some(server) = &self.server {
            config.cluster_url = server
                .parse()
                .map_err(|e| Error::Config(format!("--server {server:?}: {e}")))?;
        }
        let mut cluster = Cluster::default();
        self.override_cluster(&mut cluster);
        if cluster.insecure_skip_tls_verify == Some(true) {
            config.accept_invalid_certs = true;
        }
        if let Some(path) = &self.certificate_authority {
            config.root_cert_file = Some(path.clone());
        }
        self.override_user(&mut config.auth_info);
        Ok(())
    }
}

/// The namespaces the kubeconfig's contexts name, each once, in order.
pub fn context_namespaces(file: &Kubeconfig) -> Vec<String> {
    let mut namespaces: Vec<String> = Vec::new();
    for context in file.contexts.iter().filter_map(|c| c.context.as_ref()) {
        if let Some(ns) = &context.namespace
            && !namespaces.contains(ns)
        {
            namespaces.push(ns.clone());
        }
    }
    namespaces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig() -> Kubeconfig {
        Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\ncurrent-context: a\n\
             clusters: [{name: c, cluster: {server: 'https://one:6443'}}]\n\
             users: [{name: u, user: {client-certificate-data: x, client-key-data: y}}]\n\
             contexts: [{name: a, context: {cluster: c, user: u, namespace: shop}},\
                        {name: b, context: {cluster: c, user: u, namespace: team-a}},\
                        {name: d, context: {cluster: c, user: u, namespace: shop}}]\n",
        )
        .unwrap()
    }

    #[test]
    fn connection_flags_override_the_contexts_cluster_and_user() {
        let mut file = kubeconfig();
        let flags = Connection {
            server: Some("https://two:6443".into()),
            token: Some("t0ken".into()),
            impersonate: Some("alice".into()),
            impersonate_groups: vec!["team".into()],
            insecure_skip_tls_verify: true,
            ..Connection::default()
        };
        flags.override_kubeconfig(&mut file);
        let cluster = file.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://two:6443"));
        assert_eq!(cluster.insecure_skip_tls_verify, Some(true));
        let user = file.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_some());
        assert_eq!(
            user.client_certificate_data, None,
            "--token replaces the certificate"
        );
        assert_eq!(user.impersonate.as_deref(), Some("alice"));
        assert_eq!(user.impersonate_groups, Some(vec!["team".to_string()]));
    }

    #[test]
    fn hints_repeat_the_context_and_namespace_given() {
        let flags = Connection {
            context: Some("prod".into()),
            namespace: Some("team-a".into()),
            ..Connection::default()
        };
        assert_eq!(flags.repeated_flags(), " --context prod -n team-a");
        assert_eq!(Connection::default().repeated_flags(), "");
    }

    #[test]
    fn the_kubeconfig_namespaces_are_listed_once_each() {
        assert_eq!(context_namespaces(&kubeconfig()), ["shop", "team-a"]);
    }
}
