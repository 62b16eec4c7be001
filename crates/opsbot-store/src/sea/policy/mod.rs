//! The permission policy as stored: roles in configuration order and the user and
//! chat bindings. Replaced as a whole, because the configuration is its source.

pub(crate) mod entity;
pub(crate) mod migration;

use crate::sea::conn::Conn;
use crate::sea::errors::{Db, During};
use crate::sea::SeaStore;
use crate::{PolicyData, Result};
use async_trait::async_trait;
use entity::{role, role_binding};
use opsbot_core::Role;
use sea_orm::{ActiveValue::NotSet, EntityTrait, QueryOrder, Set};
use std::collections::BTreeMap;

const USER: &str = "user";
const CHAT: &str = "chat";

pub(crate) async fn replace(conn: &Conn, db: &Db, policy: &PolicyData) -> Result<()> {
    const ACTION: &str = "replacing the policy";
    let tx = conn.begin().await.during(db, ACTION)?;
    // Delete first: on SQLite the first statement being a write takes the write lock
    // at once, so a concurrent writer waits instead of failing.
    role_binding::Entity::delete_many()
        .exec(&tx)
        .await
        .during(db, ACTION)?;
    role::Entity::delete_many()
        .exec(&tx)
        .await
        .during(db, ACTION)?;
    if !policy.roles.is_empty() {
        let roles = policy
            .roles
            .iter()
            .enumerate()
            .map(|(i, r)| role::ActiveModel {
                id: NotSet,
                name: Set(r.name.clone()),
                position: Set(i as i32),
                commands: Set(serde_json::to_string(&r.commands).unwrap_or_default()),
                scopes: Set(serde_json::to_string(&r.scopes).unwrap_or_default()),
            });
        role::Entity::insert_many(roles)
            .exec_without_returning(&tx)
            .await
            .during(db, ACTION)?;
    }
    let bindings: Vec<role_binding::ActiveModel> = [(USER, &policy.users), (CHAT, &policy.chats)]
        .into_iter()
        .flat_map(|(kind, map)| {
            map.iter().flat_map(move |(subject, roles)| {
                roles
                    .iter()
                    .enumerate()
                    .map(move |(i, r)| role_binding::ActiveModel {
                        id: NotSet,
                        subject_kind: Set(kind.into()),
                        subject_id: Set(subject.clone()),
                        role: Set(r.clone()),
                        position: Set(i as i32),
                    })
            })
        })
        .collect();
    if !bindings.is_empty() {
        role_binding::Entity::insert_many(bindings)
            .exec_without_returning(&tx)
            .await
            .during(db, ACTION)?;
    }
    tx.commit().await.during(db, ACTION)?;
    Ok(())
}

pub(crate) async fn load(conn: &Conn, db: &Db) -> Result<PolicyData> {
    const ACTION: &str = "loading the policy";
    let roles = role::Entity::find()
        .order_by_asc(role::Column::Position)
        .all(conn)
        .await
        .during(db, ACTION)?
        .into_iter()
        .map(|r| {
            let list = |json: &str| {
                serde_json::from_str::<Vec<String>>(json)
                    .map_err(|e| db.corrupt(&format!("role {}", r.name), e))
            };
            Ok(Role {
                commands: list(&r.commands)?,
                scopes: list(&r.scopes)?,
                name: r.name.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut policy = PolicyData {
        roles,
        ..PolicyData::default()
    };
    let bindings = role_binding::Entity::find()
        .order_by_asc(role_binding::Column::Position)
        .order_by_asc(role_binding::Column::Id)
        .all(conn)
        .await
        .during(db, ACTION)?;
    for b in bindings {
        let map: &mut BTreeMap<String, Vec<String>> = match b.subject_kind.as_str() {
            USER => &mut policy.users,
            CHAT => &mut policy.chats,
            other => {
                return Err(db.corrupt("role binding", format!("unknown subject kind {other:?}")))
            }
        };
        map.entry(b.subject_id).or_default().push(b.role);
    }
    Ok(policy)
}

#[async_trait]
impl crate::PolicyStore for SeaStore {
    async fn replace_policy(&self, policy: &PolicyData) -> Result<()> {
        replace(&self.conn, &self.db, policy).await
    }

    async fn load_policy(&self) -> Result<PolicyData> {
        load(&self.conn, &self.db).await
    }
}
