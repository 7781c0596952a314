//! A SCIM list request resolved against a resource's schema: the filter as
//! a condition on named fields (which storage translates to SQL), the sort
//! field, and the page. Nothing here is evaluated in memory.

use super::error::ScimError;
use super::filter::{AttrPath, CompValue, CompareOp, Filter};

/// The largest page a client may ask for.
pub const MAX_COUNT: u32 = 1000;
/// The page size when `count` is not given.
pub const DEFAULT_COUNT: u32 = 100;

/// A value compared with a field, already in the field's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// Compared ignoring case when the field is not case-exact (the
    /// storage lower-cases both sides).
    Text(String),
    Bool(bool),
    /// Seconds since the epoch (`meta.created`, `meta.lastModified`).
    Time(i64),
}

/// A filter resolved to fields `F`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond<F> {
    Cmp {
        field: F,
        op: CompareOp,
        value: FieldValue,
    },
    Present(F),
    And(Box<Cond<F>>, Box<Cond<F>>),
    Or(Box<Cond<F>>, Box<Cond<F>>),
    Not(Box<Cond<F>>),
    /// Some member row (a user's group, a group's member) satisfies the
    /// inner condition, whose fields are the member's.
    AnyMember(Box<Cond<F>>),
    Const(bool),
}

/// What kind of data a field holds, for checking operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// `case_exact`: compared as written (ids); otherwise ignoring case.
    Text {
        case_exact: bool,
    },
    Bool,
    Time,
}

/// How a resource names its fields.
pub trait Schema {
    type Field: Copy;
    /// Resolves a path (`userName`, `name.familyName`, `meta.created`)
    /// outside any value filter. `None`: no such attribute.
    fn field(path: &AttrPath) -> Option<Resolved<Self::Field>>;
    /// Resolves a sub-attribute inside `attr[…]`.
    fn sub_field(attr: &str, sub: &str) -> Option<Resolved<Self::Field>>;
    fn kind(field: Self::Field) -> FieldKind;
    /// The schema URI an attribute path may be prefixed with.
    fn schema_uri() -> &'static str;
}

/// What a path names.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved<F> {
    Field(F),
    /// A field of the member rows (`groups.value`): tested with AnyMember.
    MemberField(F),
    /// A sub-attribute with one fixed value in this server (`emails.type`
    /// is always "work"): the condition folds to a constant.
    Constant(FieldValue),
    /// A complex attribute present when any of these fields is.
    AnyOf(Vec<F>),
    /// A multi-valued attribute of member rows (`groups`): present when
    /// there is a member.
    Members,
}

fn check_uri<S: Schema>(path: &AttrPath) -> Result<(), ScimError> {
    match &path.uri {
        Some(uri) if !uri.eq_ignore_ascii_case(S::schema_uri()) => Err(ScimError::invalid_filter(
            format!("unknown schema {uri:?} in {path}"),
        )),
        _ => Ok(()),
    }
}

fn value_for(kind: FieldKind, path: &AttrPath, value: &CompValue) -> Result<FieldValue, ScimError> {
    let mismatch =
        || ScimError::invalid_filter(format!("{path} cannot be compared with {value:?}"));
    match (kind, value) {
        (FieldKind::Text { .. }, CompValue::Str(s)) => Ok(FieldValue::Text(s.clone())),
        (FieldKind::Bool, CompValue::Bool(b)) => Ok(FieldValue::Bool(*b)),
        (FieldKind::Time, CompValue::Str(s)) => crate::scim::time::parse_datetime(s)
            .map(FieldValue::Time)
            .ok_or_else(|| ScimError::invalid_filter(format!("{s:?} is not an xsd:dateTime"))),
        _ => Err(mismatch()),
    }
}

fn check_op(kind: FieldKind, path: &AttrPath, op: CompareOp) -> Result<(), ScimError> {
    let ok = match kind {
        FieldKind::Text { .. } => true,
        FieldKind::Bool => matches!(op, CompareOp::Eq | CompareOp::Ne),
        FieldKind::Time => !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew),
    };
    if ok {
        Ok(())
    } else {
        Err(ScimError::invalid_filter(format!(
            "operator {op:?} does not apply to {path}"
        )))
    }
}

/// Compares two constants the way storage would (strings ignoring case).
fn fold(constant: &FieldValue, op: CompareOp, value: &FieldValue) -> bool {
    use std::cmp::Ordering;
    let ordering = match (constant, value) {
        (FieldValue::Text(a), FieldValue::Text(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match op {
                CompareOp::Co => return a.contains(&b),
                CompareOp::Sw => return a.starts_with(&b),
                CompareOp::Ew => return a.ends_with(&b),
                _ => a.cmp(&b),
            }
        }
        (FieldValue::Bool(a), FieldValue::Bool(b)) => a.cmp(b),
        (FieldValue::Time(a), FieldValue::Time(b)) => a.cmp(b),
        _ => return false,
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// Resolves a parsed filter against schema `S`.
pub fn resolve<S: Schema>(filter: &Filter) -> Result<Cond<S::Field>, ScimError> {
    resolve_in::<S>(filter, None)
}

fn resolve_in<S: Schema>(
    filter: &Filter,
    within: Option<&str>,
) -> Result<Cond<S::Field>, ScimError> {
    let lookup = |path: &AttrPath| -> Result<Resolved<S::Field>, ScimError> {
        check_uri::<S>(path)?;
        let found = match within {
            Some(attr) if path.sub.is_none() => S::sub_field(attr, &path.name),
            Some(_) => None,
            None => S::field(path),
        };
        found.ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute {path}")))
    };
    Ok(match filter {
        Filter::And(a, b) => Cond::And(
            Box::new(resolve_in::<S>(a, within)?),
            Box::new(resolve_in::<S>(b, within)?),
        ),
        Filter::Or(a, b) => Cond::Or(
            Box::new(resolve_in::<S>(a, within)?),
            Box::new(resolve_in::<S>(b, within)?),
        ),
        Filter::Not(inner) => Cond::Not(Box::new(resolve_in::<S>(inner, within)?)),
        Filter::ValuePath { attr, filter } => {
            if within.is_some() {
                return Err(ScimError::invalid_filter("value filters do not nest"));
            }
            check_uri::<S>(attr)?;
            let inner = resolve_in::<S>(filter, Some(&attr.name))?;
            // Conditions on member fields must hold for one and the same
            // member: wrap the whole inner condition once.
            if contains_member_fields::<S>(filter, &attr.name) {
                Cond::AnyMember(Box::new(strip_member(inner)))
            } else {
                inner
            }
        }
        Filter::Present(path) => match lookup(path)? {
            Resolved::Field(f) => Cond::Present(f),
            Resolved::MemberField(f) => Cond::AnyMember(Box::new(Cond::Present(f))),
            Resolved::Constant(_) => Cond::Const(true),
            Resolved::AnyOf(fields) => fields
                .into_iter()
                .map(Cond::Present)
                .reduce(|a, b| Cond::Or(Box::new(a), Box::new(b)))
                .unwrap_or(Cond::Const(false)),
            Resolved::Members => Cond::AnyMember(Box::new(Cond::Const(true))),
        },
        Filter::Compare { path, op, value } => {
            let resolved = lookup(path)?;
            // `eq null` means absent, `ne null` present (RFC 7644 §3.4.2.2).
            if *value == CompValue::Null {
                let present = resolve_in::<S>(&Filter::Present(path.clone()), within)?;
                return match op {
                    CompareOp::Eq => Ok(Cond::Not(Box::new(present))),
                    CompareOp::Ne => Ok(present),
                    _ => Err(ScimError::invalid_filter(
                        "null can only be compared with eq or ne",
                    )),
                };
            }
            match resolved {
                Resolved::Field(f) | Resolved::MemberField(f) => {
                    let kind = S::kind(f);
                    check_op(kind, path, *op)?;
                    let cmp = Cond::Cmp {
                        field: f,
                        op: *op,
                        value: value_for(kind, path, value)?,
                    };
                    if matches!(lookup(path)?, Resolved::MemberField(_)) && within.is_none() {
                        Cond::AnyMember(Box::new(cmp))
                    } else {
                        cmp
                    }
                }
                Resolved::Constant(constant) => {
                    let kind = match constant {
                        FieldValue::Text(_) => FieldKind::Text { case_exact: false },
                        FieldValue::Bool(_) => FieldKind::Bool,
                        FieldValue::Time(_) => FieldKind::Time,
                    };
                    check_op(kind, path, *op)?;
                    Cond::Const(fold(&constant, *op, &value_for(kind, path, value)?))
                }
                Resolved::AnyOf(_) | Resolved::Members => {
                    return Err(ScimError::invalid_filter(format!(
                        "{path} is complex: compare one of its sub-attributes"
                    )));
                }
            }
        }
    })
}

fn contains_member_fields<S: Schema>(filter: &Filter, attr: &str) -> bool {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            contains_member_fields::<S>(a, attr) || contains_member_fields::<S>(b, attr)
        }
        Filter::Not(inner) => contains_member_fields::<S>(inner, attr),
        Filter::Present(path) | Filter::Compare { path, .. } => {
            matches!(
                S::sub_field(attr, &path.name),
                Some(Resolved::MemberField(_))
            )
        }
        Filter::ValuePath { .. } => false,
    }
}

/// Member conditions inside one value filter are already relative to the
/// member row.
fn strip_member<F>(cond: Cond<F>) -> Cond<F> {
    match cond {
        Cond::AnyMember(inner) => *inner,
        Cond::And(a, b) => Cond::And(Box::new(strip_member(*a)), Box::new(strip_member(*b))),
        Cond::Or(a, b) => Cond::Or(Box::new(strip_member(*a)), Box::new(strip_member(*b))),
        Cond::Not(inner) => Cond::Not(Box::new(strip_member(*inner))),
        other => other,
    }
}

/// One page of a list request (RFC 7644 §3.4.2.4).
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery<F> {
    pub filter: Option<Cond<F>>,
    pub sort_by: Option<F>,
    pub descending: bool,
    /// 1-based; ignored with a cursor.
    pub start_index: u64,
    pub count: u32,
    /// Cursor paging (RFC 9865): `Some("")` asks for the first page,
    /// `Some(id)` for the page after that resource id (in the default
    /// order). `None`: index paging.
    pub cursor: Option<String>,
}

impl<F> ListQuery<F> {
    /// `startIndex` below 1 counts as 1; `count` is capped at `MAX_COUNT`
    /// and a negative one means 0 (RFC 7644 §3.4.2.4).
    pub fn page(start_index: Option<i64>, count: Option<i64>) -> (u64, u32) {
        let start = start_index.unwrap_or(1).max(1) as u64;
        let count = count
            .map(|c| c.clamp(0, i64::from(MAX_COUNT)) as u32)
            .unwrap_or(DEFAULT_COUNT);
        (start, count)
    }
}

/// A page of results with the total the filter matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub total: u64,
    pub items: Vec<T>,
    /// With cursor paging: more results follow this page.
    pub more: bool,
}

#[cfg(test)]
mod proptests {
    //! A `filter` travels parse → resolve on the way to SQL: any filter the
    //! grammar allows parses, and resolving it against either schema gives
    //! a condition or an `invalidFilter` 400, never another error or a panic.
    use super::*;
    use crate::scim::filter::parse_filter;
    use crate::scim::group::GroupSchema;
    use crate::scim::user::UserSchema;
    use proptest::prelude::*;

    fn arb_attr() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "id",
                "externalId",
                "userName",
                "USERNAME",
                "name",
                "name.givenName",
                "name.familyName",
                "displayName",
                "active",
                "meta.created",
                "meta.lastModified",
                "emails",
                "emails.value",
                "emails.type",
                "emails.primary",
                "groups",
                "groups.value",
                "groups.display",
                "members",
                "members.value",
                "members.display",
                "value",
                "display",
                "type",
                "nope",
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
                "urn:x:y:name",
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z][a-zA-Z0-9_-]{0,6}(\\.[a-zA-Z][a-zA-Z0-9]{0,4})?",
        ]
    }

    fn arb_value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 @._-]{0,10}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("\"2011-05-13T04:42:34Z\"".to_owned()),
            Just("\"not a date\"".to_owned()),
            prop::sample::select(vec!["true", "false", "null", "0", "-1.5", "1e308"])
                .prop_map(str::to_owned),
        ]
    }

    /// Well-formed filter text, nested a few levels.
    fn arb_filter() -> impl Strategy<Value = String> {
        let op = prop::sample::select(vec![
            "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ",
        ]);
        let leaf = prop_oneof![
            3 => (arb_attr(), op, arb_value()).prop_map(|(a, o, v)| format!("{a} {o} {v}")),
            1 => arb_attr().prop_map(|a| format!("{a} pr")),
        ];
        leaf.prop_recursive(4, 16, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} OR {b}")),
                inner.clone().prop_map(|a| format!("not ({a})")),
                inner.clone().prop_map(|a| format!("({a})")),
                (
                    prop::sample::select(vec!["emails", "groups", "members", "name"]),
                    inner
                )
                    .prop_map(|(attr, f)| format!("{attr}[{f}]")),
            ]
        })
    }

    fn resolves_or_invalid_filter<S: Schema>(filter: &Filter) -> Result<(), TestCaseError> {
        if let Err(e) = resolve::<S>(filter) {
            prop_assert_eq!(
                (e.status, e.scim_type),
                (crate::scim::ScimStatus::BadRequest, Some("invalidFilter")),
                "{}",
                e
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn grammar_filters_parse_and_resolve_or_are_invalid_filter(text in arb_filter()) {
            let filter = parse_filter(&text);
            prop_assert!(filter.is_ok(), "{:?}: {:?}", text, filter);
            let filter = filter.unwrap();
            resolves_or_invalid_filter::<UserSchema>(&filter)?;
            resolves_or_invalid_filter::<GroupSchema>(&filter)?;
        }
    }
}
