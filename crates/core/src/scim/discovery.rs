//! The SCIM discovery documents (RFC 7644 §4, RFC 7643 §5–7):
//! `ServiceProviderConfig`, `ResourceTypes` and `Schemas`, describing
//! exactly what this server implements.

use serde_json::{Value, json};

use super::group::GROUP_SCHEMA;
use super::query::MAX_COUNT;
use super::resource::list_response;
use super::user::USER_SCHEMA;

pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// Latchkey's extension of the User schema: `locked` (an administrator's
/// lock; writing `false` also clears the failed-login throttle).
pub const USER_EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:latchkey:2.0:User";

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        // RFC 9865 §4: index paging by default; cursors never expire.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": super::query::DEFAULT_COUNT,
            "maxPageSize": MAX_COUNT,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An access token from this server's token endpoint (RFC 6750), with the urn:opc:idm:__myscopes__ scope and an application role that allows the operation",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

fn resource_type(base: &str, name: &str, endpoint: &str, schema: &str, extensions: Value) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "schema": schema,
        "schemaExtensions": extensions,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")},
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        resource_type(
            base,
            "User",
            "/Users",
            USER_SCHEMA,
            json!([{"schema": USER_EXTENSION, "required": false}]),
        ),
        resource_type(base, "Group", "/Groups", GROUP_SCHEMA, json!([])),
    ]
}

pub fn resource_types_list(base: &str) -> Value {
    let all = resource_types(base);
    list_response(all.len() as u64, 1, all)
}

/// One attribute definition (RFC 7643 §7).
fn attr(name: &str, kind: &str, mutability: &str, returned: &str, case_exact: bool) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "required": false,
        "caseExact": case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": "none",
    })
}

fn with(mut value: Value, changes: Value) -> Value {
    if let (Some(target), Some(changes)) = (value.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            target.insert(k.clone(), v.clone());
        }
    }
    value
}

fn schema(base: &str, id: &str, name: &str, description: &str, attributes: Vec<Value>) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    })
}

pub fn schemas(base: &str) -> Vec<Value> {
    let rw = |name: &str, kind: &str| attr(name, kind, "readWrite", "default", false);
    let user = schema(
        base,
        USER_SCHEMA,
        "User",
        "User Account",
        vec![
            with(
                attr("userName", "string", "readWrite", "default", false),
                json!({"required": true, "uniqueness": "server"}),
            ),
            with(
                rw("name", "complex"),
                json!({"subAttributes": [
                    // Derived from givenName and familyName: what the
                    // server does, said in the schema (writes are ignored,
                    // as RFC 7643 §2.2 says of readOnly attributes).
                    attr("formatted", "string", "readOnly", "default", false),
                    rw("familyName", "string"),
                    rw("givenName", "string"),
                ]}),
            ),
            rw("displayName", "string"),
            with(
                rw("emails", "complex"),
                json!({"multiValued": true, "subAttributes": [
                    rw("value", "string"),
                    with(rw("type", "string"), json!({"canonicalValues": ["work"]})),
                    // One address per user, always the primary one.
                    attr("primary", "boolean", "readOnly", "default", false),
                ]}),
            ),
            rw("active", "boolean"),
            attr("password", "string", "writeOnly", "never", false),
            with(
                attr("groups", "complex", "readOnly", "default", false),
                json!({"multiValued": true, "subAttributes": [
                    attr("value", "string", "readOnly", "default", true),
                    with(attr("$ref", "reference", "readOnly", "default", true), json!({"referenceTypes": ["Group"]})),
                    attr("display", "string", "readOnly", "default", false),
                    attr("type", "string", "readOnly", "default", false),
                ]}),
            ),
            attr("externalId", "string", "readWrite", "default", true),
        ],
    );
    let group = schema(
        base,
        GROUP_SCHEMA,
        "Group",
        "Group; its members hold its application roles",
        vec![
            with(
                attr("displayName", "string", "readWrite", "default", false),
                json!({"required": true, "uniqueness": "server"}),
            ),
            with(
                rw("members", "complex"),
                json!({"multiValued": true, "subAttributes": [
                    attr("value", "string", "immutable", "default", true),
                    with(attr("$ref", "reference", "immutable", "default", true), json!({"referenceTypes": ["User"]})),
                    attr("display", "string", "readOnly", "default", false),
                    with(attr("type", "string", "immutable", "default", false), json!({"canonicalValues": ["User"]})),
                ]}),
            ),
        ],
    );
    let extension = schema(
        base,
        USER_EXTENSION,
        "LatchkeyUser",
        "Latchkey's user extension",
        vec![
            with(
                attr("locked", "boolean", "readWrite", "default", false),
                json!({"description": "Locked by an administrator: no sign-in until unlocked. Writing false also clears the failed-login throttle."}),
            ),
            with(
                attr("currentPassword", "string", "writeOnly", "never", false),
                json!({"description": "Required with a new password written through /Me: proof that the caller knows the current one."}),
            ),
        ],
    );
    vec![user, group, extension]
}

pub fn schemas_list(base: &str) -> Value {
    let all = schemas(base);
    list_response(all.len() as u64, 1, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_describe_themselves() {
        let base = "https://id.example.com/admin/v1";
        assert_eq!(service_provider_config(base)["patch"]["supported"], true);
        assert_eq!(resource_types_list(base)["totalResults"], 2);
        let schemas = schemas(base);
        let user = &schemas[0];
        let password = user["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "password")
            .unwrap();
        assert_eq!(password["returned"], "never");
        assert_eq!(password["mutability"], "writeOnly");
        for s in &schemas {
            for a in s["attributes"].as_array().unwrap() {
                for key in [
                    "name",
                    "type",
                    "multiValued",
                    "required",
                    "caseExact",
                    "mutability",
                    "returned",
                    "uniqueness",
                ] {
                    assert!(a.get(key).is_some(), "{} lacks {key}", a["name"]);
                }
            }
        }
    }
}
