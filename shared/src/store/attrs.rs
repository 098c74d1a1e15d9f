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

/// Epoch seconds rounded up: for "not before" times, which must never move earlier.
pub fn epoch_ceil(t: OffsetDateTime) -> AttributeValue {
    n(t.unix_timestamp() + i64::from(t.nanosecond() > 0))
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

/// An `UpdateItem` expression with every attribute name aliased (DynamoDB reserves hundreds of
/// words, `scope` and `status` among them).
#[derive(Default)]
pub struct Update {
    set: Vec<String>,
    remove: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    pub fn name(&mut self, attr: &str) -> String {
        let alias = format!("#a{}", self.names.len());
        self.names.insert(alias.clone(), attr.to_owned());
        alias
    }

    pub fn value(&mut self, v: AttributeValue) -> String {
        let alias = format!(":v{}", self.values.len());
        self.values.insert(alias.clone(), v);
        alias
    }

    pub fn set(&mut self, attr: &str, v: AttributeValue) {
        let (n, v) = (self.name(attr), self.value(v));
        self.set.push(format!("{n} = {v}"));
    }

    pub fn set_if_absent(&mut self, attr: &str, v: AttributeValue) {
        let (n, v) = (self.name(attr), self.value(v));
        self.set.push(format!("{n} = if_not_exists({n}, {v})"));
    }

    /// `attr = attr + 1`, starting from 0.
    pub fn increment(&mut self, attr: &str) {
        let n = self.name(attr);
        let (zero, one) = (self.value(n_value(0)), self.value(n_value(1)));
        self.set
            .push(format!("{n} = if_not_exists({n}, {zero}) + {one}"));
    }

    pub fn remove(&mut self, attr: &str) {
        let n = self.name(attr);
        self.remove.push(n);
    }

    pub fn expression(&self) -> String {
        let mut expr = String::new();
        if !self.set.is_empty() {
            expr.push_str("SET ");
            expr.push_str(&self.set.join(", "));
        }
        if !self.remove.is_empty() {
            expr.push_str(" REMOVE ");
            expr.push_str(&self.remove.join(", "));
        }
        expr
    }

    pub fn apply(
        self,
        req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let expr = self.expression();
        req.update_expression(expr)
            .set_expression_attribute_names(Some(self.names))
            .set_expression_attribute_values(Some(self.values))
    }
}

fn n_value(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
