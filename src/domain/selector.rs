//! Label selectors, as Kubernetes writes them: requirements joined by `,` (all must
//! hold), each one of `k=v` (or `k==v`), `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`
//! (the key is there) and `!k` (it is not). As in Kubernetes, `k!=v` and
//! `k notin (…)` also hold for a monitor without the key. Spaces around the parts are
//! allowed. The empty selector selects everything.

use std::fmt;

use super::labels::{Labels, check_key, check_value};

/// The longest selector accepted, in bytes.
pub const MAX_SELECTOR_BYTES: usize = 4096;

/// One condition on a monitor's labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            Self::Equals(key, value) => labels.get(key) == Some(value.as_str()),
            Self::NotEquals(key, value) => labels.get(key) != Some(value.as_str()),
            Self::In(key, values) => labels
                .get(key)
                .is_some_and(|found| values.iter().any(|value| value == found)),
            Self::NotIn(key, values) => !labels
                .get(key)
                .is_some_and(|found| values.iter().any(|value| value == found)),
            Self::Exists(key) => labels.get(key).is_some(),
            Self::Absent(key) => labels.get(key).is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Equals(key, value) => write!(formatter, "{key}={value}"),
            Self::NotEquals(key, value) => write!(formatter, "{key}!={value}"),
            Self::In(key, values) => write!(formatter, "{key} in ({})", values.join(",")),
            Self::NotIn(key, values) => write!(formatter, "{key} notin ({})", values.join(",")),
            Self::Exists(key) => formatter.write_str(key),
            Self::Absent(key) => write!(formatter, "!{key}"),
        }
    }
}

/// Requirements that must all hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        if text.len() > MAX_SELECTOR_BYTES {
            return Err(SelectorError {
                position: MAX_SELECTOR_BYTES,
                reason: format!("a selector is at most {MAX_SELECTOR_BYTES} bytes"),
            });
        }
        let mut parser = Parser { text, position: 0 };
        let mut requirements = Vec::new();
        parser.skip_spaces();
        if parser.at_end() {
            return Ok(Self(requirements));
        }
        loop {
            requirements.push(parser.requirement()?);
            parser.skip_spaces();
            match parser.peek() {
                None => return Ok(Self(requirements)),
                Some(',') => parser.position += 1,
                Some(_) => return Err(parser.error("expected ',' or the end of the selector")),
            }
        }
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|requirement| requirement.matches(labels))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, requirement) in self.0.iter().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            requirement.fmt(formatter)?;
        }
        Ok(())
    }
}

/// Where a selector stops making sense (a byte offset from 0) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    pub position: usize,
    pub reason: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "at position {}: {}", self.position, self.reason)
    }
}

struct Parser<'a> {
    text: &'a str,
    position: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.position..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.position >= self.text.len()
    }

    fn skip_spaces(&mut self) {
        let rest = self.rest();
        self.position += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    fn error(&self, reason: impl Into<String>) -> SelectorError {
        SelectorError {
            position: self.position,
            reason: reason.into(),
        }
    }

    /// The longest run of characters a key or value may hold (letters, digits,
    /// `-_./`), checked afterwards so the error can say what is wrong with it.
    fn word(&mut self) -> &str {
        let start = self.position;
        let rest = self.rest();
        let length = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
            .unwrap_or(rest.len());
        self.position += length;
        &self.text[start..start + length]
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        let start = self.position;
        let key = self.word().to_owned();
        if key.is_empty() {
            return Err(self.error(match self.peek() {
                Some(found) => format!("expected a label key, found {found:?}"),
                None => "expected a label key".to_owned(),
            }));
        }
        check_key(&key).map_err(|why| SelectorError {
            position: start,
            reason: format!("label key {key:?} {why}"),
        })?;
        Ok(key)
    }

    fn value(&mut self) -> Result<String, SelectorError> {
        let start = self.position;
        let value = self.word().to_owned();
        check_value(&value).map_err(|why| SelectorError {
            position: start,
            reason: format!("label value {value:?} {why}"),
        })?;
        Ok(value)
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        self.skip_spaces();
        if self.peek() == Some('!') {
            self.position += 1;
            self.skip_spaces();
            return Ok(Requirement::Absent(self.key()?));
        }
        let key = self.key()?;
        self.skip_spaces();
        let rest = self.rest();
        if rest.is_empty() || rest.starts_with(',') {
            return Ok(Requirement::Exists(key));
        }
        for (operator, length) in [("==", 2), ("!=", 2), ("=", 1)] {
            if rest.starts_with(operator) {
                self.position += length;
                self.skip_spaces();
                let value = self.value()?;
                return Ok(if operator == "!=" {
                    Requirement::NotEquals(key, value)
                } else {
                    Requirement::Equals(key, value)
                });
            }
        }
        let operator_at = self.position;
        let operator = self.word().to_owned();
        let negated = match operator.as_str() {
            "in" => false,
            "notin" => true,
            _ => {
                return Err(SelectorError {
                    position: operator_at,
                    reason:
                        "expected '=', '==', '!=', 'in', 'notin', ',' or the end after a label key"
                            .to_owned(),
                });
            }
        };
        let values = self.value_set(&operator)?;
        Ok(if negated {
            Requirement::NotIn(key, values)
        } else {
            Requirement::In(key, values)
        })
    }

    /// `( v1, v2, … )`, at least one value.
    fn value_set(&mut self, operator: &str) -> Result<Vec<String>, SelectorError> {
        self.skip_spaces();
        if self.peek() != Some('(') {
            return Err(self.error(format!("expected '(' after '{operator}'")));
        }
        self.position += 1;
        let mut values = Vec::new();
        loop {
            self.skip_spaces();
            values.push(self.value()?);
            self.skip_spaces();
            match self.peek() {
                Some(',') => self.position += 1,
                Some(')') => {
                    self.position += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or ')' in a set of values")),
            }
        }
        if values == [""] {
            return Err(self.error(format!("'{operator} ()' needs at least one value")));
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        )
        .expect("valid labels")
    }

    fn selects(selector: &str, pairs: &[(&str, &str)]) -> bool {
        Selector::parse(selector)
            .unwrap_or_else(|error| panic!("{selector}: {error}"))
            .matches(&labels(pairs))
    }

    #[test]
    fn every_operator_selects_as_in_kubernetes() {
        let payments = [("team", "payments"), ("env", "prod")];
        let dev = [("team", "payments"), ("env", "dev")];
        let bare: [(&str, &str); 0] = [];
        for (selector, on_payments, on_dev, on_bare) in [
            ("", true, true, true),
            ("team=payments", true, true, false),
            ("team==payments", true, true, false),
            ("team=payments,env!=dev", true, false, false),
            ("env!=dev", true, false, true),
            ("env in (prod, staging)", true, false, false),
            ("env notin (dev)", true, false, true),
            ("team", true, true, false),
            ("!team", false, false, true),
            (" team = payments , ! env ", false, false, false),
            ("example.com/owner", false, false, false),
        ] {
            assert_eq!(selects(selector, &payments), on_payments, "{selector}");
            assert_eq!(selects(selector, &dev), on_dev, "{selector}");
            assert_eq!(selects(selector, &bare), on_bare, "{selector}");
        }
        assert!(selects("env=", &[("env", "")]));
        assert!(!selects("env=", &[("env", "x")]));
    }

    #[test]
    fn bad_selectors_say_where_and_why() {
        for (selector, position, says) in [
            ("team=a,", 7, "expected a label key"),
            ("team=a b", 7, "expected ','"),
            ("team in a", 8, "expected '('"),
            ("team in (a", 10, "expected ',' or ')'"),
            ("team in ()", 10, "at least one value"),
            ("team ~ a", 5, "expected '='"),
            ("-team", 0, "label key \"-team\""),
            ("team=-a", 5, "label value \"-a\""),
            ("team like (a)", 5, "'notin'"),
            ("=a", 0, "expected a label key"),
        ] {
            let error = Selector::parse(selector).expect_err(selector);
            assert_eq!(error.position, position, "{selector}: {error}");
            assert!(error.reason.contains(says), "{selector}: {error}");
        }
        assert!(Selector::parse(&"a".repeat(MAX_SELECTOR_BYTES + 1)).is_err());
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("team".to_owned()),
            Just("env".to_owned()),
            Just("example.com/tier".to_owned()),
            "[a-z][a-z0-9_.-]{0,6}[a-z0-9]",
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("a".to_owned()),
            Just("b".to_owned()),
            "[A-Za-z0-9]([A-Za-z0-9_.-]{0,5}[A-Za-z0-9])?",
        ]
    }

    fn requirement() -> impl Strategy<Value = Requirement> {
        let set = || proptest::collection::vec(value(), 1..4);
        prop_oneof![
            (key(), value()).prop_map(|(key, value)| Requirement::Equals(key, value)),
            (key(), value()).prop_map(|(key, value)| Requirement::NotEquals(key, value)),
            (key(), set())
                .prop_filter("not one empty value", |(_, values)| values != &[""])
                .prop_map(|(key, values)| Requirement::In(key, values)),
            (key(), set())
                .prop_filter("not one empty value", |(_, values)| values != &[""])
                .prop_map(|(key, values)| Requirement::NotIn(key, values)),
            key().prop_map(Requirement::Exists),
            key().prop_map(Requirement::Absent),
        ]
    }

    fn negation(requirement: &Requirement) -> Requirement {
        match requirement.clone() {
            Requirement::Equals(key, value) => Requirement::NotEquals(key, value),
            Requirement::NotEquals(key, value) => Requirement::Equals(key, value),
            Requirement::In(key, values) => Requirement::NotIn(key, values),
            Requirement::NotIn(key, values) => Requirement::In(key, values),
            Requirement::Exists(key) => Requirement::Absent(key),
            Requirement::Absent(key) => Requirement::Exists(key),
        }
    }

    fn label_set() -> impl Strategy<Value = Labels> {
        proptest::collection::btree_map(key(), value(), 0..5)
            .prop_map(|pairs| Labels::new(pairs).expect("valid labels"))
    }

    proptest! {
        /// Any text parses or is refused with a position inside it: no panic.
        #[test]
        fn any_text_parses_or_is_refused_within_it(text in ".{0,40}") {
            if let Err(error) = Selector::parse(&text) {
                prop_assert!(error.position <= text.len(), "{error}");
            }
        }

        /// A selector written out parses back to itself.
        #[test]
        fn selectors_round_trip_through_text(requirements in proptest::collection::vec(requirement(), 0..5)) {
            let selector = Selector(requirements);
            let text = selector.to_string();
            prop_assert_eq!(Selector::parse(&text).expect("parses"), selector);
        }

        /// Each operator and its opposite split every set of labels in two.
        #[test]
        fn operators_and_their_opposites_split_every_label_set(
            requirements in proptest::collection::vec(requirement(), 1..4),
            labels in label_set(),
        ) {
            for requirement in &requirements {
                prop_assert_ne!(requirement.matches(&labels), negation(requirement).matches(&labels));
            }
            // A monitor's own labels, as equalities, select it.
            let own = Selector(labels.iter().map(|(key, value)| Requirement::Equals(key.to_owned(), value.to_owned())).collect());
            prop_assert!(own.matches(&labels));
        }
    }
}
