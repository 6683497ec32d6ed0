//! The two ways the services refuse what Tether does not implement: a method
//! (`UNIMPLEMENTED`) and a field that is set (`INVALID_ARGUMENT`), each named, never
//! ignored.

use tonic::Status;

/// `method` is not implemented, and `why`.
pub(crate) fn method(method: &str, why: &str) -> Status {
    Status::unimplemented(format!("{method} is not supported by Tether: {why}"))
}

/// Refuses `field` when it is `set`; `hint` says what to do instead.
pub(crate) fn field(set: bool, field: &str, hint: &str) -> Result<(), Status> {
    if set {
        Err(Status::invalid_argument(format!(
            "{field} is not supported by Tether; leave it unset ({hint})"
        )))
    } else {
        Ok(())
    }
}
