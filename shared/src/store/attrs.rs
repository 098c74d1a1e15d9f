//! Reading and writing DynamoDB attribute values without a mapping library.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::StoreError;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn b(v: Vec<u8>) -> AttributeValue {
    AttributeValue::B(Blob::new(v))
}

pub fn epoch(t: OffsetDateTime) -> AttributeValue {
    n(t.unix_timestamp())
}

fn missing(name: &str) -> StoreError {
    StoreError::Malformed(format!("attribute {name} missing or of the wrong type"))
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| missing(name))
}

pub fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| missing(name))
}

pub fn opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub fn opt_b(item: &Item, name: &str) -> Option<Vec<u8>> {
    item.get(name)
        .and_then(|v| v.as_b().ok())
        .map(|b| b.as_ref().to_vec())
}

pub fn get_time(item: &Item, name: &str) -> Result<OffsetDateTime, StoreError> {
    let secs: i64 = get_n(item, name)?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| missing(name))
}

pub fn opt_time(item: &Item, name: &str) -> Option<OffsetDateTime> {
    opt_n::<i64>(item, name).and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
}

pub fn parse<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    get_s(item, name)?
        .parse()
        .map_err(|_| StoreError::Malformed(format!("attribute {name} has an unknown value")))
}
