//! The table's definition: one place for the key schema, the GSIs and TTL, used both to
//! create the table (tests, local tools) and to check template.yaml against.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use connector::ports::StoreResult;
use serde_json::{Value, json};

use super::item;
use super::keys;

/// DynamoDB TTL's attribute: epoch seconds.
pub const TTL_ATTRIBUTE: &str = keys::EXPIRES_AT_S;

/// (index name, partition key attribute, sort key attribute); every index projects ALL.
const INDEXES: [(&str, &str, &str); 3] = [
    (keys::GSI1, keys::GSI1_PK, keys::GSI1_SK),
    (keys::GSI2, keys::GSI2_PK, keys::GSI2_SK),
    (keys::GSI3, keys::GSI3_PK, keys::GSI3_SK),
];

/// How long creating a table may take before we give up (moto: instant; AWS: seconds).
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);

/// Every key attribute is a string.
fn key_attributes() -> Vec<&'static str> {
    let mut names = vec![keys::PK, keys::SK];
    for (_, pk, sk) in INDEXES {
        names.push(pk);
        names.push(sk);
    }
    names
}

/// The table's `AWS::DynamoDB::Table` properties as CloudFormation JSON (template.yaml
/// must declare the same).
pub fn table_definition(table_name: &str) -> Value {
    let key_schema = |pk: &str, sk: &str| {
        json!([
            {"AttributeName": pk, "KeyType": "HASH"},
            {"AttributeName": sk, "KeyType": "RANGE"},
        ])
    };
    json!({
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": key_attributes()
            .into_iter()
            .map(|name| json!({"AttributeName": name, "AttributeType": "S"}))
            .collect::<Vec<_>>(),
        "KeySchema": key_schema(keys::PK, keys::SK),
        "GlobalSecondaryIndexes": INDEXES
            .iter()
            .map(|(name, pk, sk)| json!({
                "IndexName": name,
                "KeySchema": key_schema(pk, sk),
                "Projection": {"ProjectionType": "ALL"},
            }))
            .collect::<Vec<_>>(),
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": true},
    })
}

fn key_schema(pk: &str, sk: &str) -> StoreResult<Vec<KeySchemaElement>> {
    [(pk, KeyType::Hash), (sk, KeyType::Range)]
        .into_iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(item::backend)
        })
        .collect()
}

pub async fn create(client: &Client, table: &str) -> StoreResult<()> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(keys::PK, keys::SK)?));
    for name in key_attributes() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(item::backend)?,
        );
    }
    for (name, pk, sk) in INDEXES {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .set_key_schema(Some(key_schema(pk, sk)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(item::backend)?,
        );
    }
    request.send().await.map_err(item::backend)?;
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(CREATE_TIMEOUT)
        .await
        .map_err(item::backend)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(item::backend)?,
        )
        .send()
        .await
        .map_err(item::backend)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_declares_every_key_attribute_once_as_a_string() {
        let def = table_definition("state");
        let attrs = def["AttributeDefinitions"].as_array().expect("a list");
        assert_eq!(attrs.len(), 8);
        assert!(attrs.iter().all(|a| a["AttributeType"] == "S"));
        let gsis = def["GlobalSecondaryIndexes"].as_array().expect("a list");
        assert_eq!(gsis.len(), 3);
        assert_eq!(
            def["TimeToLiveSpecification"]["AttributeName"],
            "expires_at_s"
        );
    }
}
