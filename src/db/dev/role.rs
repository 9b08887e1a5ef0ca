//! Roles for trying the project in its dev cluster as the application would run: the cluster's
//! own user is a superuser, which row-level security never applies to, so checking tenant
//! isolation as that user shows every row and looks broken.

use super::{Cluster, dev_error};
use crate::error::{Error, Result};

/// What [`Cluster::ensure_login_role`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleOutcome {
    Created,
    Existed,
}

impl Cluster {
    /// Makes sure `name` is a LOGIN role without SUPERUSER or BYPASSRLS in the cluster (which
    /// must be running), creating it when missing. An existing role that bypasses row security
    /// is refused rather than changed: someone made it that way.
    pub async fn ensure_login_role(&self, name: &str) -> Result<RoleOutcome> {
        crate::sql::check_ident(name).map_err(|reason| Error::Identifier {
            what: "role".into(),
            name: name.into(),
            reason,
        })?;
        let mut conn = crate::db::connect(&self.url()).await?;
        let result = async {
            let row: Option<(bool, bool, bool)> = sqlx::query_as(
                "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $1",
            )
            .bind(name)
            .fetch_optional(&mut conn)
            .await
            .map_err(|e| Error::database(format!("cannot look up role {name:?}"), &e))?;
            match row {
                None => {
                    let quoted = crate::sql::quote_ident(name).map_err(|reason| Error::Identifier {
                        what: "role".into(),
                        name: name.into(),
                        reason,
                    })?;
                    crate::db::exec(
                        &mut conn,
                        &format!("CREATE ROLE {quoted} LOGIN NOSUPERUSER NOBYPASSRLS"),
                        &format!("cannot create role {name:?} in the dev cluster"),
                    )
                    .await?;
                    Ok(RoleOutcome::Created)
                }
                Some((true, _, _)) | Some((_, true, _)) => Err(dev_error(format!(
                    "role {name:?} is a superuser or has BYPASSRLS, so row-level security does not apply to it: choose another name"
                ))),
                Some((_, _, false)) => Err(dev_error(format!(
                    "role {name:?} cannot log in (NOLOGIN): choose another name, or ALTER ROLE {name} LOGIN"
                ))),
                Some(_) => Ok(RoleOutcome::Existed),
            }
        }
        .await;
        crate::db::close(conn).await;
        result
    }
}
