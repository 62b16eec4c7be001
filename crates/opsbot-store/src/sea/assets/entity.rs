//! sea-orm entities of the CMDB tables (see `migration.rs` here).

pub mod asset {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "asset")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub identity: String,
        pub hostname: String,
        pub source: String,
        pub status: String,
        pub token_id: String,
        pub vm_provider: Option<String>,
        pub vm_id: Option<String>,
        pub vm_name: Option<String>,
        pub vm_path: Option<String>,
        pub first_seen: DateTimeUtc,
        pub last_seen: DateTimeUtc,
        pub report: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod asset_fact {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "asset_fact")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub asset_id: i64,
        pub fact_key: String,
        pub fact_value: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An agent token's host (see `migration_agent_bindings.rs`).
pub mod agent_token_host {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "agent_token_host")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub token_id: String,
        pub identity: String,
        pub bound_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
