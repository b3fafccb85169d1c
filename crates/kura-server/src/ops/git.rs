//! Git processes for smart HTTP: the hardened `git upload-pack|receive-pack` child of one
//! request (the store decides its flags and environment).

use kura_git::ServiceRequest;
use tokio::process::Command;

use super::Ops;

impl Ops {
    pub fn git_service(&self, req: &ServiceRequest<'_>) -> Command {
        self.store.service(req)
    }
}
