//! The CMDB's chat commands, declared and answered here (`opsbot_core::chat`): 资产
//! (the asset card) and 变更 (its recent changes). An asset out of the asker's scope
//! (the linked VM's path, else `cmdb/<identity>`) reads as one that does not exist.

use crate::render;
use async_trait::async_trait;
use opsbot_core::chat::{check_name, Answer, Call, ChatCommand, ChatCommands};
use opsbot_core::{Asset, AssetDesk, AssetLookup, DeskError};
use std::fmt::Write;
use std::sync::Arc;

/// The canonical names: the permissions roles grant for the CMDB, and what the REST
/// API's asset endpoints check.
pub mod names {
    pub const ASSET: &str = "资产";
    pub const CHANGES: &str = "变更";
}

pub const ASSET: ChatCommand = ChatCommand {
    name: names::ASSET,
    aliases: &["asset"],
    usage: "资产:主机名",
    summary: "CMDB 资产卡片:系统、CPU、内存、磁盘、网卡、序列号",
    destructive: false,
    args: (1, 1),
};

pub const CHANGES: ChatCommand = ChatCommand {
    name: names::CHANGES,
    aliases: &["changes"],
    usage: "变更:主机名",
    summary: "资产最近的变更记录",
    destructive: false,
    args: (1, 1),
};

/// Both commands, in the order 帮助 lists them.
pub static COMMANDS: [ChatCommand; 2] = [ASSET, CHANGES];

/// How many changes 变更 shows.
const CHANGES_SHOWN: u64 = 10;

/// 资产 and 变更, answered through an asset desk.
pub struct AssetCommands {
    desk: Arc<dyn AssetDesk>,
}

impl AssetCommands {
    pub fn new(desk: Arc<dyn AssetDesk>) -> AssetCommands {
        AssetCommands { desk }
    }
}

#[async_trait]
impl ChatCommands for AssetCommands {
    fn commands(&self) -> &'static [ChatCommand] {
        &COMMANDS
    }

    fn check(&self, _: &ChatCommand, args: &[String]) -> Result<(), String> {
        check_name(&args[0], "主机名")
    }

    async fn run(&self, call: Call<'_>) -> Answer {
        let name = call.command.name;
        let host = &call.args[0];
        let visible = |a: &Asset| call.caller.may_at(name, &a.scope_path());
        let asset = match self.desk.find(host, &visible).await {
            Ok(AssetLookup::Found(a)) => a,
            Ok(AssetLookup::NotFound { similar }) => {
                let mut text = format!("没有找到资产「{host}」");
                if !similar.is_empty() {
                    let _ = write!(text, ";相近的有: {}", similar.join("、"));
                }
                return Answer::Invalid(text);
            }
            Err(e) => return Answer::Failed(unavailable(&e)),
        };
        let answer = if name == names::CHANGES {
            self.desk
                .changes(&asset, CHANGES_SHOWN)
                .await
                .map(|list| render::changes(&asset, &list, call.zone))
        } else {
            self.desk
                .card(&asset)
                .await
                .map(|c| render::card(&c, chrono::Utc::now(), call.zone))
        };
        match answer {
            Ok(text) => Answer::Done(text),
            Err(e) => Answer::Failed(unavailable(&e)),
        }
    }
}

/// The asset desk fails only when the store does.
fn unavailable(e: &DeskError) -> String {
    format!("⚠ 存储暂不可用: {e}。请稍后重试")
}
