//! sea-orm entities of the permission policy (shapes as in `migration.rs` here).

use crate::sea::entity::table;

table!(role, "role", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub position: i32,
    /// JSON array of command names.
    pub commands: String,
    /// JSON array of scope patterns.
    pub scopes: String,
});

table!(role_binding, "role_binding", {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `user` or `chat`.
    pub subject_kind: String,
    pub subject_id: String,
    pub role: String,
    pub position: i32,
});
