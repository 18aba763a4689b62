//! Who is making a request: the static-token users of the local control plane (and the kubeconfig
//! files of an external cluster's).

/// Who is making a request. Each is a static-token user of the local control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persona {
    /// `system:masters`.
    Admin,
    /// Group `api-owners`; owns the products in test namespaces.
    Owner,
    /// Group `api-consumers`.
    Consumer,
    /// A second member of `api-consumers`.
    Consumer2,
    /// devportal's own identity (`system:serviceaccount:devportal-system:devportal`).
    Controller,
}

impl Persona {
    /// The kubeconfig file name, which is also the username for the human personas.
    pub fn name(self) -> &'static str {
        match self {
            Persona::Admin => "admin",
            Persona::Owner => "owner",
            Persona::Consumer => "consumer",
            Persona::Consumer2 => "consumer2",
            Persona::Controller => "controller",
        }
    }
}
