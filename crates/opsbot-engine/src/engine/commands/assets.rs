//! The CMDB's commands: 资产 (the asset card) and 变更 (its recent changes), answered
//! through the registered asset desk (`opsbot_core::Feature::Assets`). An asset out of
//! the asker's scope reads as one that does not exist.

use super::{foreign, names, Ctx, Handled};
use crate::command::{Command, CommandSpec};
use crate::engine::{failed, invalid, ok};
use crate::render::{
    self,
    desk::{self, Asked},
};
use std::fmt::Write;

pub const ASSET: CommandSpec = CommandSpec::new(
    names::ASSET,
    &["asset"],
    "资产:主机名",
    "CMDB 资产卡片:系统、CPU、内存、磁盘、网卡、序列号",
    |a| {
        a.count(1, 1)?;
        Ok(Command::Asset {
            host: a.name(0, "主机名")?,
        })
    },
)
.runs(run);

pub const CHANGES: CommandSpec = CommandSpec::new(
    names::CHANGES,
    &["changes"],
    "变更:主机名",
    "资产最近的变更记录",
    |a| {
        a.count(1, 1)?;
        Ok(Command::AssetChanges {
            host: a.name(0, "主机名")?,
        })
    },
)
.runs(run);

/// Finds the asset, checks its scope (the linked VM's path, else `cmdb/<identity>`),
/// and answers with its card or its recent changes.
fn run(cx: Ctx<'_>, cmd: Command) -> Handled<'_> {
    Box::pin(async move {
        let name = cmd.name();
        let (host, changes) = match cmd {
            Command::Asset { host } => (host, false),
            Command::AssetChanges { host } => (host, true),
            cmd => foreign(&cmd),
        };
        let Some(asset_desk) = cx.engine.subsystems.assets() else {
            return Ok(failed(format!("{name}: CMDB 尚未配置,此功能暂不可用")));
        };
        let asker = cx.asker;
        let visible = |a: &opsbot_core::Asset| asker.view.sees_asset(name, a);
        let asset = match asset_desk.find(&host, &visible).await {
            Ok(opsbot_core::AssetLookup::Found(a)) => a,
            Ok(opsbot_core::AssetLookup::NotFound { similar }) => {
                let mut text = format!("没有找到资产「{host}」");
                if !similar.is_empty() {
                    let _ = write!(text, ";相近的有: {}", similar.join("、"));
                }
                return Ok(invalid(text));
            }
            Err(e) => return Ok(failed(desk::error(&e, Asked::Asset))),
        };
        let zone = cx.engine.zone();
        let answer = if changes {
            asset_desk
                .changes(&asset, 10)
                .await
                .map(|list| render::asset::changes(&asset, &list, &zone))
        } else {
            asset_desk
                .card(&asset)
                .await
                .map(|c| render::asset::card(&c, chrono::Utc::now(), &zone))
        };
        Ok(match answer {
            Ok(text) => ok(text),
            Err(e) => failed(desk::error(&e, Asked::Asset)),
        })
    })
}
