//! 构建:项目[,分支|tag|commit]: a build recorded in the store, run as a job, its log kept
//! line by line, its artefact stored once by sha256.

use crate::build::{self, BuildRequest};
use crate::deploys::{store_err, Deploys, Refused};
use crate::orders::names;
use crate::storelog::StoreLog;
use opsbot_core::chat::{JobReport, Requester};
use opsbot_store::deploy::{BuildEnd, LogOf, NewBuild};
use std::path::PathBuf;
use std::sync::Arc;

/// A build accepted: its id, and the work that runs it.
pub struct Accepted {
    pub build: i64,
    pub summary: String,
}

impl Deploys {
    /// Records build of `project` at `reference` (`""`: the default branch) for `caller`;
    /// [`Deploys::run_build`] does it.
    pub async fn create_build(
        &self,
        caller: &dyn Requester,
        project: &str,
        reference: &str,
    ) -> Result<Accepted, Refused> {
        let p = self.project_for(caller, names::BUILD, project).await?;
        if reference.starts_with('-') || reference.contains(char::is_whitespace) {
            return Err(Refused::Invalid(format!(
                "「{reference}」不是分支、tag 或 commit"
            )));
        }
        let id = self
            .store
            .build_create(
                &NewBuild {
                    project: p.name.clone(),
                    reference: reference.to_string(),
                    user: caller.user().to_string(),
                },
                &self.owner,
            )
            .await
            .map_err(store_err)?;
        let what = if reference.is_empty() {
            if p.repo.branch.is_empty() {
                "默认分支".to_string()
            } else {
                p.repo.branch.clone()
            }
        } else {
            reference.to_string()
        };
        Ok(Accepted {
            build: id,
            summary: format!("构建 #{id}: {} @ {what}", p.name),
        })
    }

    /// Runs build `id` to its end; the text says how it ended (with the log's tail when
    /// it failed).
    pub async fn run_build(
        self: Arc<Self>,
        id: i64,
        report: Arc<dyn JobReport>,
    ) -> Result<String, String> {
        let rec = match self.store.build_get(id).await {
            Ok(Some(b)) => b,
            Ok(None) => return Err(format!("没有构建 #{id}")),
            Err(e) => return Err(format!("存储不可用: {e}")),
        };
        let Ok(Some(p)) = self.project(&rec.project).await else {
            return Err(format!("项目「{}」已不存在", rec.project));
        };
        let previous = self.store.build_latest(&p.name).await.ok().flatten();
        let log = StoreLog::build(self.store.clone(), id);
        report.note(5, format!("拉取 {} 代码", p.name));
        let work_root = PathBuf::from(&self.cfg.data_dir).join("work");
        let req = BuildRequest {
            project: &p,
            reference: &rec.reference,
            build_id: id,
            previous_revision: previous.as_ref().map(|b| b.revision.as_str()),
            work_root: &work_root,
            timeout: self.cfg.build_timeout(),
        };
        let result = build::run(&req, &self.artefacts, log.as_ref()).await;
        log.flush().await;
        let end = match &result {
            Ok(b) => BuildEnd {
                state: "succeeded".into(),
                revision: b.revision.clone(),
                artefact: Some(b.artefact.clone()),
                artefact_size: Some(b.size as i64),
                changelog: b.changelog.clone(),
                error: None,
            },
            Err(e) => BuildEnd {
                state: "failed".into(),
                revision: String::new(),
                artefact: None,
                artefact_size: None,
                changelog: String::new(),
                error: Some(e.to_string()),
            },
        };
        if let Err(e) = self.store.build_finish(id, &end).await {
            return Err(format!("构建 #{id} 的结果无法保存: {e}"));
        }
        match result {
            Ok(b) => Ok(crate::render::build_done(id, &p.name, &b)),
            Err(e) => {
                let tail = self
                    .store
                    .log_read(LogOf::Build(id), 0, 10_000)
                    .await
                    .unwrap_or_default();
                Err(crate::render::build_failed(
                    id,
                    &p.name,
                    &e.to_string(),
                    &tail,
                ))
            }
        }
    }
}
