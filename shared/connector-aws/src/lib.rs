//! AWS adapters of the connector's ports: the state store on one DynamoDB table and the
//! job queue on SQS (with its dead-letter queue).

pub mod dynamodb;
pub mod sqs;
