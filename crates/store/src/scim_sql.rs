//! SCIM list queries as SQL: a resolved filter becomes a WHERE clause with
//! bound parameters (never spliced text), the sort an ORDER BY, the page a
//! LIMIT/OFFSET. Portable across SQLite and PostgreSQL; the only engine
//! difference is the binary collation for ordering comparisons.

use latchkey_core::scim::filter::CompareOp;
use latchkey_core::scim::group::GroupField;
use latchkey_core::scim::query::{Cond, FieldValue, ListQuery};
use latchkey_core::scim::user::UserField;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// How a field is stored.
pub(crate) enum Column {
    /// Compared as stored (ids).
    Exact(&'static str),
    /// Stored lower-cased by Latchkey (`username_key`): the value is
    /// lower-cased in Rust, the same way it was written.
    PreLowered(&'static str),
    /// Stored lower-cased by SQL `LOWER()` (`email_key`): only the value
    /// is lowered, so an index on the column serves.
    SqlLowered(&'static str),
    /// Compared with LOWER() on both sides.
    Folded(&'static str),
    Bool(&'static str),
    Int(&'static str),
}

/// A resource's columns and how its member rows are reached.
pub(crate) trait Table {
    type Field: Copy;
    fn column(field: Self::Field) -> Column;
    /// `EXISTS (… WHERE <link> AND (inner))` for member conditions.
    fn member_exists(inner: &str) -> String;
    const ID: &'static str;
    const FROM: &'static str;
}

pub(crate) struct Users;

impl Table for Users {
    type Field = UserField;
    fn column(field: UserField) -> Column {
        match field {
            UserField::Id => Column::Exact("users.id"),
            UserField::ExternalId => Column::Exact("users.external_id"),
            UserField::UserName => Column::PreLowered("users.username_key"),
            UserField::GivenName => Column::Folded("users.given_name"),
            UserField::FamilyName => Column::Folded("users.family_name"),
            UserField::DisplayName => Column::Folded("users.display_name"),
            UserField::Email => Column::SqlLowered("users.email_key"),
            UserField::Active => Column::Bool("users.active"),
            UserField::Created => Column::Int("users.created_at"),
            UserField::LastModified => Column::Int("users.updated_at"),
            UserField::GroupId => Column::Exact("g.id"),
            UserField::GroupName => Column::Folded("g.name"),
        }
    }
    fn member_exists(inner: &str) -> String {
        format!(
            "EXISTS (SELECT 1 FROM user_groups ug JOIN groups g ON g.id = ug.group_id WHERE ug.user_id = users.id AND ({inner}))"
        )
    }
    const ID: &'static str = "users.id";
    const FROM: &'static str = "users";
}

pub(crate) struct Groups;

impl Table for Groups {
    type Field = GroupField;
    fn column(field: GroupField) -> Column {
        match field {
            GroupField::Id => Column::Exact("groups.id"),
            GroupField::DisplayName => Column::Folded("groups.name"),
            GroupField::Created => Column::Int("groups.created_at"),
            GroupField::LastModified => Column::Int("groups.updated_at"),
            GroupField::MemberId => Column::Exact("u.id"),
            GroupField::MemberName => Column::PreLowered("u.username_key"),
        }
    }
    fn member_exists(inner: &str) -> String {
        format!(
            "EXISTS (SELECT 1 FROM user_groups ug JOIN users u ON u.id = ug.user_id WHERE ug.group_id = groups.id AND ({inner}))"
        )
    }
    const ID: &'static str = "groups.id";
    const FROM: &'static str = "groups";
}

/// Builds SQL text and its binds together, numbering placeholders.
pub(crate) struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
    /// Appended to ordering comparisons: `COLLATE "C"` on PostgreSQL, so
    /// both engines order strings by code point.
    collate: &'static str,
}

impl Sql {
    pub(crate) fn new(collate: &'static str) -> Self {
        Sql {
            text: String::new(),
            binds: Vec::new(),
            collate,
        }
    }

    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    pub(crate) fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

/// `%` and `_` are literal in a SCIM value; `\` escapes them in LIKE.
fn like_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// How each side of a text comparison is written.
#[derive(Clone, Copy)]
enum Case {
    AsIs,
    LowerValue,
    LowerBoth,
}

fn text_cmp(sql: &mut Sql, column: &str, op: CompareOp, value: String, case: Case) -> String {
    let lhs = match case {
        Case::LowerBoth => format!("LOWER({column})"),
        _ => column.to_owned(),
    };
    let wrap: fn(&str) -> String = match case {
        Case::AsIs => |p| p.to_owned(),
        _ => |p| format!("LOWER({p})"),
    };
    let pattern = |sql: &mut Sql, pattern: String| {
        let p = sql.bind(Bind::Text(pattern));
        format!("{lhs} LIKE {} ESCAPE '\\'", wrap(&p))
    };
    match op {
        CompareOp::Eq => {
            let p = sql.bind(Bind::Text(value));
            format!("{lhs} = {}", wrap(&p))
        }
        CompareOp::Ne => {
            let p = sql.bind(Bind::Text(value));
            format!("({column} IS NULL OR {lhs} <> {})", wrap(&p))
        }
        CompareOp::Co => pattern(sql, format!("%{}%", like_escape(&value))),
        CompareOp::Sw => pattern(sql, format!("{}%", like_escape(&value))),
        CompareOp::Ew => pattern(sql, format!("%{}", like_escape(&value))),
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
            let p = sql.bind(Bind::Text(value));
            let symbol = ordering_symbol(op);
            format!("{lhs}{c} {symbol} {}{c}", wrap(&p), c = sql.collate)
        }
    }
}

fn ordering_symbol(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Eq => "=",
        _ => "<>",
    }
}

/// The WHERE expression of `cond`.
pub(crate) fn condition<T: Table>(sql: &mut Sql, cond: &Cond<T::Field>) -> String {
    match cond {
        Cond::Const(true) => "1 = 1".to_owned(),
        Cond::Const(false) => "1 = 0".to_owned(),
        Cond::And(a, b) => format!(
            "({} AND {})",
            condition::<T>(sql, a),
            condition::<T>(sql, b)
        ),
        Cond::Or(a, b) => format!("({} OR {})", condition::<T>(sql, a), condition::<T>(sql, b)),
        Cond::Not(inner) => format!("NOT ({})", condition::<T>(sql, inner)),
        Cond::AnyMember(inner) => {
            let inner = condition::<T>(sql, inner);
            T::member_exists(&inner)
        }
        Cond::Present(field) => match T::column(*field) {
            Column::Exact(c)
            | Column::PreLowered(c)
            | Column::SqlLowered(c)
            | Column::Folded(c) => {
                format!("({c} IS NOT NULL AND {c} <> '')")
            }
            Column::Bool(c) | Column::Int(c) => format!("{c} IS NOT NULL"),
        },
        Cond::Cmp { field, op, value } => match (T::column(*field), value) {
            (Column::Exact(c), FieldValue::Text(v)) => text_cmp(sql, c, *op, v.clone(), Case::AsIs),
            (Column::PreLowered(c), FieldValue::Text(v)) => {
                text_cmp(sql, c, *op, v.to_lowercase(), Case::AsIs)
            }
            (Column::SqlLowered(c), FieldValue::Text(v)) => {
                text_cmp(sql, c, *op, v.clone(), Case::LowerValue)
            }
            (Column::Folded(c), FieldValue::Text(v)) => {
                text_cmp(sql, c, *op, v.clone(), Case::LowerBoth)
            }
            (Column::Bool(c), FieldValue::Bool(b)) => {
                let p = sql.bind(Bind::Bool(*b));
                format!("{c} {} {p}", ordering_symbol(*op))
            }
            (Column::Int(c), FieldValue::Time(t)) => {
                let p = sql.bind(Bind::Int(*t));
                format!("{c} {} {p}", ordering_symbol(*op))
            }
            // Resolution checks kinds; a mismatch matches nothing.
            _ => "1 = 0".to_owned(),
        },
    }
}

/// `WHERE …` (or nothing) for the filter alone (what `totalResults`
/// counts).
pub(crate) fn where_clause<T: Table>(sql: &mut Sql, query: &ListQuery<T::Field>) {
    if let Some(filter) = &query.filter {
        let expression = condition::<T>(sql, filter);
        sql.push(" WHERE ");
        sql.push(&expression);
    }
}

/// `WHERE …` for a page: the filter and, with a cursor, "after this id"
/// (keyset paging: an index seek, however deep the page).
pub(crate) fn page_where_clause<T: Table>(sql: &mut Sql, query: &ListQuery<T::Field>) {
    let mut parts = Vec::new();
    if let Some(filter) = &query.filter {
        parts.push(condition::<T>(sql, filter));
    }
    if let Some(after) = query.cursor.as_deref().filter(|c| !c.is_empty()) {
        let p = sql.bind(Bind::Text(after.to_owned()));
        let symbol = if query.descending { "<" } else { ">" };
        parts.push(format!("{} {symbol} {p}", T::ID));
    }
    if !parts.is_empty() {
        sql.push(" WHERE ");
        sql.push(&parts.join(" AND "));
    }
}

fn order_terms<T: Table>(sql: &Sql, query: &ListQuery<T::Field>) -> String {
    let direction = if query.descending { "DESC" } else { "ASC" };
    let collate = sql.collate;
    let order = match query.sort_by.map(T::column) {
        Some(Column::Folded(c)) => format!("LOWER({c}){collate} {direction}, "),
        Some(Column::Exact(c) | Column::PreLowered(c) | Column::SqlLowered(c)) => {
            format!("{c}{collate} {direction}, ")
        }
        Some(Column::Bool(c) | Column::Int(c)) => format!("{c} {direction}, "),
        None => String::new(),
    };
    format!(" ORDER BY {order}{id} {direction}", id = T::ID)
}

/// `ORDER BY …` for a query (ties broken by id).
pub(crate) fn order_by<T: Table>(sql: &mut Sql, query: &ListQuery<T::Field>) {
    let terms = order_terms::<T>(sql, query);
    sql.push(&terms);
}

/// `ORDER BY … LIMIT … OFFSET …` for a query.
pub(crate) fn order_and_page<T: Table>(sql: &mut Sql, query: &ListQuery<T::Field>) {
    order_by::<T>(sql, query);
    // With a cursor: one row more, to learn whether another page follows.
    let (limit, offset) = match &query.cursor {
        Some(_) => (i64::from(query.count) + 1, 0),
        None => (
            i64::from(query.count),
            query.start_index.saturating_sub(1) as i64,
        ),
    };
    let limit = sql.bind(Bind::Int(limit));
    let offset = sql.bind(Bind::Int(offset));
    sql.push(&format!(" LIMIT {limit} OFFSET {offset}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::scim::filter::parse_filter;
    use latchkey_core::scim::query::resolve;
    use latchkey_core::scim::user::UserSchema;

    fn users_where(filter: &str) -> (String, Vec<Bind>) {
        let cond = resolve::<UserSchema>(&parse_filter(filter).unwrap()).unwrap();
        let mut sql = Sql::new("");
        let text = condition::<Users>(&mut sql, &cond);
        (text, sql.binds)
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let (text, binds) = users_where(r#"userName eq "Robert'); DROP TABLE users; --""#);
        assert_eq!(text, "users.username_key = $1");
        assert_eq!(
            binds,
            vec![Bind::Text("robert'); drop table users; --".into())]
        );
        let (text, binds) = users_where(r#"emails co "100%_\\""#);
        assert_eq!(text, "users.email_key LIKE LOWER($1) ESCAPE '\\'");
        assert_eq!(binds, vec![Bind::Text("%100\\%\\_\\\\%".into())]);
    }

    #[test]
    fn logic_and_members_nest() {
        let (text, _) = users_where(
            r#"not (active eq false) and (groups[display eq "admins"] or meta.created gt "2020-01-01T00:00:00Z")"#,
        );
        assert_eq!(
            text,
            "(NOT (users.active = $1) AND (EXISTS (SELECT 1 FROM user_groups ug JOIN groups g ON g.id = ug.group_id WHERE ug.user_id = users.id AND (LOWER(g.name) = LOWER($2))) OR users.created_at > $3))"
        );
    }
}
