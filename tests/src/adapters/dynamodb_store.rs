use connector_aws::dynamodb::DynamoStore;

use crate::moto::{moto_config, unique_name};

/// A DynamoDB store over a fresh, uniquely named table on this process's moto_server.
pub async fn dynamodb_store() -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&moto_config().await);
    let table = unique_name("state");
    DynamoStore::create_table(&client, &table)
        .await
        .expect("create the state table on moto");
    DynamoStore::new(client, table)
}
