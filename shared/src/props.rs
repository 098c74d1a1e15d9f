//! Generators for the property tests of the Atlassian response parsers (issue 16): arbitrary
//! JSON, and real-shaped samples mutated near validity (a field dropped, retyped, nested, or
//! an array where an object was). Each parser's test lives beside its private types.
//!
//! Cases: 40,000 in all here by default (with the two handlers' 30,000 each, 100,000);
//! `PROP_CASES_PERCENT` scales them.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

pub use crate::testing::cases;

/// Any JSON, a few levels deep, keys drawn partly from the names the parsers look for.
pub fn any_json(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        "[0-9]{1,6}".prop_map(Value::String),
    ];
    let key = prop_oneof![
        3 => prop::sample::select(keys).prop_map(str::to_owned),
        1 => "[a-zA-Z_]{0,10}",
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replace the value at a random place of `sample` (found by walking `path` choices) with
/// `other`, or drop it.
fn mutate(mut v: Value, walk: &[usize], other: Value, drop: bool) -> Value {
    fn go(v: &mut Value, walk: &[usize], other: Value, drop: bool) {
        let Some((&first, rest)) = walk.split_first() else {
            *v = other;
            return;
        };
        match v {
            Value::Object(m) if !m.is_empty() => {
                let key = m.keys().nth(first % m.len()).cloned().unwrap_or_default();
                if rest.is_empty() && drop {
                    m.remove(&key);
                } else if let Some(child) = m.get_mut(&key) {
                    go(child, rest, other, drop);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let i = first % a.len();
                if rest.is_empty() && drop {
                    a.remove(i);
                } else {
                    go(&mut a[i], rest, other, drop);
                }
            }
            _ => *v = other,
        }
    }
    go(&mut v, walk, other, drop);
    v
}

/// One of `samples`, mutated at up to three places; sometimes left as is, sometimes replaced
/// by anything.
pub fn near(samples: Vec<Value>, keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let one = (
        prop::collection::vec(0usize..16, 0..6),
        any_json(keys),
        any::<bool>(),
    );
    prop_oneof![
        1 => prop::sample::select(samples.clone()),
        6 => (prop::sample::select(samples), prop::collection::vec(one, 1..4)).prop_map(
            |(mut v, edits)| {
                for (walk, other, drop) in edits {
                    v = mutate(v, &walk, other, drop);
                }
                v
            }
        ),
        2 => any_json(keys),
    ]
}

/// Run `check` on `cases` generated values; it may return an error, never panic.
pub fn run(
    name: &str,
    cases: u32,
    strategy: impl Strategy<Value = Value>,
    check: impl Fn(&Value, &[u8]) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    // The bytes as Atlassian would send them; now and then cut short or with junk appended.
    let strategy = (strategy, 0u8..8).prop_map(|(v, how)| {
        let mut bytes = v.to_string().into_bytes();
        match how {
            0 => bytes.truncate(bytes.len() / 2),
            1 => bytes.extend_from_slice(b"\xff}"),
            _ => {}
        }
        (v, bytes)
    });
    let result = runner.run(&strategy, |(v, bytes)| check(&v, &bytes));
    eprintln!("{name}: {cases} cases in {:?}", started.elapsed());
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}
