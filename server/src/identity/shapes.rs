//! The inputs and outputs of the identity operations, with the model's member names.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use synctrig_store::{IdentityRow, Pool, PoolSettings};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetIdInput {
    pub(super) identity_pool_id: String,
    #[serde(default)]
    pub(super) logins: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct IdentityIdOutput {
    pub(super) identity_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetCredentialsInput {
    pub(super) identity_id: String,
    #[serde(default)]
    pub(super) logins: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Credentials {
    pub(super) access_key_id: String,
    pub(super) secret_key: String,
    pub(super) session_token: String,
    pub(super) expiration: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct GetCredentialsOutput {
    pub(super) identity_id: String,
    pub(super) credentials: Credentials,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct TokenOutput {
    pub(super) identity_id: String,
    pub(super) token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UnlinkIdentityInput {
    pub(super) identity_id: String,
    pub(super) logins: BTreeMap<String, String>,
    pub(super) logins_to_remove: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct Empty {}

/// `IdentityPool`: the pool as CreateIdentityPool, DescribeIdentityPool and
/// UpdateIdentityPool answer it (and UpdateIdentityPool takes it).
#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct IdentityPoolShape {
    #[serde(default)]
    pub(super) identity_pool_id: String,
    pub(super) identity_pool_name: String,
    pub(super) allow_unauthenticated_identities: bool,
    #[serde(default, rename = "SamlProviderARNs", skip_serializing_if = "Vec::is_empty")]
    pub(super) saml_provider_arns: Vec<String>,
    #[serde(flatten)]
    pub(super) settings: PoolSettings,
}

impl IdentityPoolShape {
    pub(super) fn of(pool: &Pool) -> Self {
        IdentityPoolShape {
            identity_pool_id: pool.pool_id.clone(),
            identity_pool_name: pool.name.clone(),
            allow_unauthenticated_identities: pool.allow_unauthenticated,
            saml_provider_arns: Vec::new(),
            settings: pool.settings.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PoolIdInput {
    pub(super) identity_pool_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListInput {
    #[serde(default)]
    pub(super) identity_pool_id: String,
    pub(super) max_results: i64,
    pub(super) next_token: Option<String>,
    #[serde(default)]
    pub(super) hide_disabled: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PoolShortDescription {
    pub(super) identity_pool_id: String,
    pub(super) identity_pool_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListIdentityPoolsOutput {
    pub(super) identity_pools: Vec<PoolShortDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_token: Option<String>,
}

/// `IdentityDescription`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct IdentityDescription {
    pub(super) identity_id: String,
    pub(super) logins: Vec<String>,
    pub(super) creation_date: i64,
    pub(super) last_modified_date: i64,
}

impl IdentityDescription {
    pub(super) fn of(row: &IdentityRow) -> Self {
        let mut providers: Vec<String> = row.logins.iter().map(|(p, _)| p.clone()).collect();
        providers.dedup();
        IdentityDescription {
            identity_id: row.identity_id.clone(),
            logins: providers,
            creation_date: row.created,
            last_modified_date: row.modified,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListIdentitiesOutput {
    pub(super) identity_pool_id: String,
    pub(super) identities: Vec<IdentityDescription>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct IdentityIdInput {
    pub(super) identity_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DeleteIdentitiesInput {
    pub(super) identity_ids_to_delete: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Unprocessed {
    pub(super) identity_id: String,
    pub(super) error_code: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DeleteIdentitiesOutput {
    pub(super) unprocessed_identity_ids: Vec<Unprocessed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DeveloperTokenInput {
    pub(super) identity_pool_id: String,
    pub(super) identity_id: Option<String>,
    pub(super) logins: BTreeMap<String, String>,
    pub(super) token_duration: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct LookupInput {
    pub(super) identity_pool_id: String,
    pub(super) identity_id: Option<String>,
    pub(super) developer_user_identifier: Option<String>,
    pub(super) max_results: Option<i64>,
    pub(super) next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct LookupOutput {
    pub(super) identity_id: String,
    pub(super) developer_user_identifier_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct MergeInput {
    pub(super) source_user_identifier: String,
    pub(super) destination_user_identifier: String,
    pub(super) developer_provider_name: String,
    pub(super) identity_pool_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct UnlinkDeveloperInput {
    pub(super) identity_id: String,
    pub(super) identity_pool_id: String,
    pub(super) developer_provider_name: String,
    pub(super) developer_user_identifier: String,
}
