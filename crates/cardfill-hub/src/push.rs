//! `cardfill push`: a card and the files it links to, uploaded in one commit through hf-hub's
//! upload API (pre-upload, then the commit: atomic on the Hub's side).
//!
//! The token is found as huggingface_hub finds it (`HF_TOKEN`, `HF_TOKEN_PATH`, `HF_HOME/token`),
//! sent only to the endpoint (reqwest drops it on a redirect to another host) and never shown.
//! Connection failures and transient answers (429, 5xx) are retried with exponential backoff.
//!
//! hf-hub 1.0 reads a pull request's URL from a `prUrl` field of the commit answer, but the Hub
//! answers `pullRequestUrl` (the field huggingface_hub and huggingface.js read). Without
//! forking the crate, [`push`] finds the pull request through hf-hub's own refs listing
//! (`refs/pr/N` whose target is the new commit) and builds its URL from the number.

use hf_hub::HFError;
use hf_hub::repository::CommitOperation;

use crate::client::Hub;
use crate::{HubError, HubOptions};

/// Attempts of each request (the first and the retries).
const ATTEMPTS: usize = 5;
/// Limit of one request: a commit carries the files.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One commit to make.
#[derive(Clone, Debug)]
pub struct Upload {
    /// `org/name`.
    pub repo: String,
    /// The branch to commit to, or the base of the pull request [default: `main`].
    pub revision: Option<String>,
    /// Open a pull request instead of committing to the branch.
    pub create_pr: bool,
    /// The commit's title.
    pub message: String,
    /// The commit's description.
    pub description: String,
    /// Path in the repository → contents.
    pub files: Vec<(String, Vec<u8>)>,
}

/// What the Hub made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// The commit's URL.
    pub commit_url: Option<String>,
    /// The commit's sha.
    pub commit_oid: Option<String>,
    /// The pull request's URL, with `create_pr`.
    pub pr_url: Option<String>,
}

/// Makes `upload`'s commit. `Err` with one line saying what is missing for 401 and 403, and
/// why the Hub could not be reached otherwise; a failed commit leaves the repository as it was.
pub fn push(upload: &Upload, options: &HubOptions) -> Result<Pushed, HubError> {
    let options = HubOptions {
        online: true,
        timeout: Some(options.timeout.unwrap_or(TIMEOUT)),
        ..options.clone()
    };
    if !options.network_allowed() {
        return Err(HubError::Offline {
            endpoint: crate::client::endpoint(&options),
        });
    }
    let hub = Hub::with_retries(&options, ATTEMPTS)?;
    let fail = |message: String| HubError::Api {
        endpoint: hub.endpoint().to_owned(),
        message: hub.redact(&message),
    };
    if !hub.has_token() {
        return Err(fail(
            "no token: set HF_TOKEN to a write token, or log in with `hf auth login` (the token file under HF_HOME)".into(),
        ));
    }
    let net = hub.net().map_err(fail)?;
    let repo = net.model(&upload.repo);
    let describe = |e: &HFError| {
        match e {
        HFError::AuthRequired { .. } => {
            "the Hub refused the token (HTTP 401): it is invalid or expired; set HF_TOKEN to a valid write token".to_owned()
        }
        HFError::Forbidden { .. } => format!(
            "the token may not write to `{}` (HTTP 403): a read-only token, or no write access to the repository; use a write token, or --create-pr where you may open pull requests",
            upload.repo
        ),
        HFError::RepoNotFound { .. } => format!(
            "no repository `{}` (HTTP 404): create it first, or check the name",
            upload.repo
        ),
        HFError::RevisionNotFound { .. } => format!(
            "`{}` has no branch `{}` (HTTP 404)",
            upload.repo,
            upload.revision.as_deref().unwrap_or("main")
        ),
        other => net.describe(other),
    }
    };
    let operations: Vec<CommitOperation> = upload
        .files
        .iter()
        .map(|(path, bytes)| CommitOperation::add_bytes(path.clone(), bytes.clone()))
        .collect();
    let info = net
        .run(async {
            repo.create_commit()
                .operations(operations)
                .commit_message(upload.message.clone())
                .commit_description(upload.description.clone())
                .maybe_revision(upload.revision.clone())
                .create_pr(upload.create_pr)
                .send()
                .await
                .map_err(|e| describe(&e))
        })
        .map_err(fail)?;
    let mut pushed = Pushed {
        commit_url: info.commit_url,
        commit_oid: info.commit_oid,
        pr_url: info.pr_url,
    };
    if upload.create_pr && pushed.pr_url.is_none() {
        let number = match info.pr_num {
            Some(n) => Some(n),
            None => pushed.commit_oid.as_deref().and_then(|oid| {
                let refs = net
                    .run(async {
                        repo.list_refs()
                            .include_pull_requests(true)
                            .send()
                            .await
                            .map_err(|e| describe(&e))
                    })
                    .ok()?;
                refs.pull_requests
                    .iter()
                    .find(|r| r.target_commit == oid)
                    .and_then(|r| r.git_ref.rsplit('/').next()?.parse::<u64>().ok())
            }),
        };
        pushed.pr_url =
            number.map(|n| format!("{}/{}/discussions/{n}", hub.endpoint(), upload.repo));
    }
    Ok(pushed)
}
