//! `CompanyRegistry` on DynamoDB, in the resync table beside the keeper's requests and last runs:
//! every company under the one partition key `company`, sorted by tenant, so that the registry is
//! read with one Query (paged) and a company with one GetItem. A registry item has no `state`, so
//! the sync's scans for requests pass it by.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use tracing::instrument;

use domain::ids::TenantId;
use domain::ports::{CompanyRegistry, RegistryError};
use domain::registry::{CompanyState, RegisteredCompany};

use crate::resync_ledger::{DynamoResyncLedger, item as ledger_item};

/// The partition key every registry item shares; the sort key (`requestedAt`) is the tenant.
pub const REGISTRY_KEY: &str = "company";

/// Attribute names of a registry item besides the key.
pub mod item {
    pub const TENANT: &str = "tenant";
    pub const COMPANY_ID: &str = "companyId";
    pub const CREDENTIAL: &str = "credential";
    pub const STATE: &str = "companyState";
    pub const ADDED_AT: &str = "addedAt";
    pub const CHANGED_AT: &str = "changedAt";
    pub const SUBSCRIBED_AT: &str = "subscribedAt";
    pub const NAME: &str = "name";
}

fn registry_error<E, R>(error: aws_sdk_dynamodb::error::SdkError<E, R>) -> RegistryError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    RegistryError {
        source: Box::new(crate::sdk::AwsFailure::of(&error)),
    }
}

/// A registry entry read from a scan of the ledger's table (as `status` reads it); none for any
/// other item.
pub fn read_registered(entry: &HashMap<String, AttributeValue>) -> Option<RegisteredCompany> {
    let registry_key = entry.get(ledger_item::KEY).and_then(|v| v.as_s().ok());
    (registry_key.map(String::as_str) == Some(REGISTRY_KEY))
        .then(|| registered(entry))
        .flatten()
}

/// A registry item read back; none if it is not one this adapter wrote.
fn registered(entry: &HashMap<String, AttributeValue>) -> Option<RegisteredCompany> {
    let text = |name: &str| entry.get(name).and_then(|v| v.as_s().ok());
    let time = |name: &str| text(name).and_then(|t| t.parse::<Timestamp>().ok());
    Some(RegisteredCompany {
        tenant: TenantId::parse(text(item::TENANT)?).ok()?,
        company_id: entry.get(item::COMPANY_ID)?.as_n().ok()?.parse().ok()?,
        credential: text(item::CREDENTIAL)?.clone(),
        state: CompanyState::parse(text(item::STATE)?)?,
        added_at: time(item::ADDED_AT)?,
        changed_at: time(item::CHANGED_AT)?,
        subscribed_at: time(item::SUBSCRIBED_AT),
        name: text(item::NAME).cloned(),
    })
}

fn key_of(tenant: &TenantId) -> [(String, AttributeValue); 2] {
    [
        (
            ledger_item::KEY.to_owned(),
            AttributeValue::S(REGISTRY_KEY.to_owned()),
        ),
        (
            ledger_item::REQUESTED_AT.to_owned(),
            AttributeValue::S(tenant.to_string()),
        ),
    ]
}

impl CompanyRegistry for DynamoResyncLedger {
    #[instrument(skip_all)]
    async fn registered(&self) -> Result<Vec<RegisteredCompany>, RegistryError> {
        let items = self
            .client()
            .query()
            .table_name(self.table_name())
            .key_condition_expression("#pk = :registry")
            .expression_attribute_names("#pk", ledger_item::KEY)
            .expression_attribute_values(":registry", AttributeValue::S(REGISTRY_KEY.into()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(registry_error)?;
        Ok(items.iter().filter_map(registered).collect())
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    async fn registered_one(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<RegisteredCompany>, RegistryError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table_name())
            .set_key(Some(key_of(tenant).into_iter().collect()))
            .consistent_read(true)
            .send()
            .await
            .map_err(registry_error)?;
        Ok(output.item.as_ref().and_then(registered))
    }

    #[instrument(skip_all, fields(tenant = %company.tenant))]
    async fn add(&self, company: &RegisteredCompany) -> Result<bool, RegistryError> {
        let s = |text: String| AttributeValue::S(text);
        let mut put = self
            .client()
            .put_item()
            .table_name(self.table_name())
            .set_item(Some(key_of(&company.tenant).into_iter().collect()))
            .item(item::TENANT, s(company.tenant.to_string()))
            .item(
                item::COMPANY_ID,
                AttributeValue::N(company.company_id.to_string()),
            )
            .item(item::CREDENTIAL, s(company.credential.clone()))
            .item(item::STATE, s(company.state.as_str().to_owned()))
            .item(item::ADDED_AT, s(company.added_at.to_string()))
            .item(item::CHANGED_AT, s(company.changed_at.to_string()))
            .condition_expression("attribute_not_exists(#tenant) OR #state = :removed")
            .expression_attribute_names("#tenant", item::TENANT)
            .expression_attribute_names("#state", item::STATE)
            .expression_attribute_values(":removed", s(CompanyState::Removed.as_str().to_owned()));
        if let Some(name) = &company.name {
            put = put.item(item::NAME, s(name.clone()));
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(registry_error(error)),
        }
    }

    #[instrument(skip_all, fields(tenant = %tenant, from = from.as_str(), to = to.as_str()))]
    async fn change_state(
        &self,
        tenant: &TenantId,
        from: CompanyState,
        to: CompanyState,
        at: Timestamp,
    ) -> Result<bool, RegistryError> {
        let s = |text: &str| AttributeValue::S(text.to_owned());
        let subscribed = if to == CompanyState::Active {
            ", #subscribedAt = if_not_exists(#subscribedAt, :at)"
        } else {
            ""
        };
        let mut update = self
            .client()
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(key_of(tenant).into_iter().collect()))
            .update_expression(format!("SET #state = :to, #changedAt = :at{subscribed}"))
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", item::STATE)
            .expression_attribute_names("#changedAt", item::CHANGED_AT)
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":at", s(&at.to_string()));
        if to == CompanyState::Active {
            update = update.expression_attribute_names("#subscribedAt", item::SUBSCRIBED_AT);
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(registry_error(error)),
        }
    }
}
