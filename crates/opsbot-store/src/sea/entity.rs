//! The `table!` macro every feature's `entity.rs` declares its sea-orm entities with,
//! one module per table. Column shapes there must match the feature's `migration.rs`;
//! the entities are only used to read and write rows.

/// Declares one table's entity module with the boilerplate sea-orm wants.
macro_rules! table {
    ($(#[$doc:meta])* $module:ident, $table:literal, { $($body:tt)* }) => {
        $(#[$doc])*
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                $($body)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}
pub(crate) use table;
