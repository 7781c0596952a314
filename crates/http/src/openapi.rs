//! The OpenAPI 3.1 document of the JSON admin API (`GET /admin/v1/openapi.json`):
//! apps, resource servers and signing keys. Written out rather than derived,
//! to keep a macro framework out of the build; an end-to-end test calls every
//! operation it lists and checks the answers against it.

use serde_json::{Value, json};

fn error_responses() -> Value {
    json!({
        "400": {"$ref": "#/components/responses/Invalid"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "503": {"$ref": "#/components/responses/Unavailable"}
    })
}

fn with_errors(mut ok: Value) -> Value {
    let errors = error_responses();
    let map = ok.as_object_mut().expect("responses are an object");
    for (code, response) in errors.as_object().expect("an object") {
        map.entry(code.clone()).or_insert(response.clone());
    }
    ok
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn list_of(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["totalResults", "Resources"],
        "properties": {
            "totalResults": {"type": "integer"},
            "Resources": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}}
        }
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn id_parameter(what: &str) -> Value {
    json!([{
        "name": "id", "in": "path", "required": true,
        "description": format!("the {what}'s immutable id, or its natural key"),
        "schema": {"type": "string"}
    }])
}

pub fn document(issuer: &str) -> Value {
    let string_list = json!({"type": "array", "items": {"type": "string"}});
    let app_input = json!({
        "type": "object",
        "description": "The fields of an app in the domain file (docs/domain-file.md).",
        "additionalProperties": false,
        "required": ["name", "type"],
        "properties": {
            "name": {"type": "string"},
            "client_id": {"type": "string", "description": "default: the name, lower-cased, dashes for spaces"},
            "type": {"type": "string", "enum": ["trusted", "confidential", "public"]},
            "client_secret": {"type": "string", "writeOnly": true, "description": "default for a new trusted or confidential app: generated and returned once"},
            "client_secret_jwt": {"type": "boolean"},
            "active": {"type": "boolean"},
            "grant_types": {"type": "array", "items": {"type": "string", "enum": ["password", "refresh_token", "client_credentials"]}},
            "redirect_uris": string_list,
            "scopes": string_list,
            "app_roles": string_list,
            "jwks": {"type": "string", "description": "a JWK Set, as JSON text"},
            "certificate": {"type": "string", "description": "a PEM certificate or public key"},
            "access_token_ttl": {"type": ["string", "integer"], "examples": ["1h"]},
            "refresh_token_ttl": {"type": ["string", "integer"], "examples": ["7d"]},
            "session_lifetime": {"type": ["string", "integer"]},
            "refresh_token_reuse_interval": {"type": ["string", "integer"], "examples": ["30s", 0], "description": "0 (off) to 60 s"}
        }
    });
    let app = json!({
        "type": "object",
        "required": ["id", "client_id", "name", "type", "active", "grant_types", "scopes"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "client_id": {"type": "string"},
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ["trusted", "confidential", "public"]},
            "active": {"type": "boolean"},
            "has_secret": {"type": "boolean"},
            "client_secret": {"type": "string", "readOnly": true, "description": "only in the answer that created or rotated it"},
            "client_secret_jwt": {"type": "boolean"},
            "previous_secret_expires_at": {"type": ["integer", "null"]},
            "keys": {"type": "string", "enum": ["jwks", "certificate", "none"]},
            "grant_types": string_list,
            "redirect_uris": string_list,
            "scopes": string_list,
            "app_roles": string_list,
            "access_token_ttl": {"type": "integer"},
            "refresh_token_ttl": {"type": "integer"},
            "session_lifetime": {"type": ["integer", "null"]},
            "refresh_token_reuse_interval": {"type": "integer"}
        }
    });
    let server_input = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "audience"],
        "properties": {
            "name": {"type": "string"},
            "audience": {"type": "string", "description": "never changes once created"},
            "scopes": string_list
        }
    });
    let server = json!({
        "type": "object",
        "required": ["id", "name", "audience", "scopes", "qualified_scopes"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string"},
            "audience": {"type": "string"},
            "scopes": string_list,
            "qualified_scopes": string_list
        }
    });
    let key = json!({
        "type": "object",
        "required": ["kid", "alg", "state", "created_at", "public_jwk"],
        "properties": {
            "kid": {"type": "string"},
            "alg": {"type": "string"},
            "state": {"type": "string", "enum": ["active", "next", "retiring", "retired"]},
            "created_at": {"type": "integer"},
            "activates_at": {"type": ["integer", "null"], "description": "when a next key begins (or an active one began) to sign; null: from created_at"},
            "retiring_at": {"type": ["integer", "null"]},
            "retired_at": {"type": ["integer", "null"]},
            "public_jwk": {"type": "object"}
        }
    });
    let scim_error = json!({
        "type": "object",
        "required": ["schemas", "status", "detail"],
        "properties": {
            "schemas": string_list,
            "status": {"type": "string"},
            "scimType": {"type": "string"},
            "detail": {"type": "string"}
        }
    });
    let error_body = json_content(reference("Error"));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Latchkey admin API: apps, resource servers, signing keys",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Bearer tokens with the urn:opc:idm:__myscopes__ scope; what each application role may do is the permission table of docs/admin-api.md. Users and Groups are SCIM 2.0 (RFC 7643/7644), described by /admin/v1/Schemas."
        },
        "servers": [{"url": issuer}],
        "security": [{"bearer": []}],
        "paths": {
            "/admin/v1/Apps": {
                "get": {"operationId": "listApps", "summary": "List apps (Application, Security or Identity Domain Administrator)",
                        "responses": with_errors(json!({"200": {"description": "the apps", "content": json_content(list_of("App"))}}))},
                "post": {"operationId": "createApp", "summary": "Create an app; a generated client secret is in the answer, once",
                         "requestBody": {"required": true, "content": json_content(reference("AppInput"))},
                         "responses": with_errors(json!({"201": {"description": "created", "content": json_content(reference("App"))},
                                                         "409": {"$ref": "#/components/responses/Conflict"}}))}
            },
            "/admin/v1/Apps/{id}": {
                "parameters": id_parameter("app"),
                "get": {"operationId": "getApp", "summary": "One app",
                        "responses": with_errors(json!({"200": {"description": "the app", "content": json_content(reference("App"))},
                                                        "404": {"$ref": "#/components/responses/NotFound"}}))},
                "put": {"operationId": "replaceApp", "summary": "Replace an app's settings (client_id and id never change; active=false ends its sessions)",
                        "requestBody": {"required": true, "content": json_content(reference("AppInput"))},
                        "responses": with_errors(json!({"200": {"description": "the app", "content": json_content(reference("App"))},
                                                        "404": {"$ref": "#/components/responses/NotFound"}}))},
                "delete": {"operationId": "deleteApp", "summary": "Delete an app (its sessions end)",
                           "responses": with_errors(json!({"204": {"description": "deleted"},
                                                           "404": {"$ref": "#/components/responses/NotFound"}}))}
            },
            "/admin/v1/Apps/{id}/secret": {
                "parameters": id_parameter("app"),
                "post": {"operationId": "rotateAppSecret", "summary": "A new generated client secret, returned once; the old one keeps working for `grace`",
                         "requestBody": {"required": false, "content": json_content(json!({
                             "type": "object", "additionalProperties": false,
                             "properties": {"grace": {"type": "string", "examples": ["24h"], "description": "at most 30d; default 0"}}}))},
                         "responses": with_errors(json!({"200": {"description": "the app, with client_secret", "content": json_content(reference("App"))},
                                                         "404": {"$ref": "#/components/responses/NotFound"}}))}
            },
            "/admin/v1/ResourceServers": {
                "get": {"operationId": "listResourceServers", "summary": "List resource servers and their scopes",
                        "responses": with_errors(json!({"200": {"description": "the resource servers", "content": json_content(list_of("ResourceServer"))}}))},
                "post": {"operationId": "createResourceServer", "summary": "Create a resource server",
                         "requestBody": {"required": true, "content": json_content(reference("ResourceServerInput"))},
                         "responses": with_errors(json!({"201": {"description": "created", "content": json_content(reference("ResourceServer"))},
                                                         "409": {"$ref": "#/components/responses/Conflict"}}))}
            },
            "/admin/v1/ResourceServers/{id}": {
                "parameters": id_parameter("resource server"),
                "get": {"operationId": "getResourceServer", "summary": "One resource server",
                        "responses": with_errors(json!({"200": {"description": "the resource server", "content": json_content(reference("ResourceServer"))},
                                                        "404": {"$ref": "#/components/responses/NotFound"}}))},
                "put": {"operationId": "replaceResourceServer", "summary": "Rename it or replace its scopes (a scope an app may be granted cannot be removed: 409)",
                        "requestBody": {"required": true, "content": json_content(reference("ResourceServerInput"))},
                        "responses": with_errors(json!({"200": {"description": "the resource server", "content": json_content(reference("ResourceServer"))},
                                                        "404": {"$ref": "#/components/responses/NotFound"},
                                                        "409": {"$ref": "#/components/responses/Conflict"}}))},
                "delete": {"operationId": "deleteResourceServer", "summary": "Delete a resource server none of whose scopes an app may be granted",
                           "responses": with_errors(json!({"204": {"description": "deleted"},
                                                           "404": {"$ref": "#/components/responses/NotFound"},
                                                           "409": {"$ref": "#/components/responses/Conflict"}}))}
            },
            "/admin/v1/SigningKeys": {
                "get": {"operationId": "listSigningKeys", "summary": "Every signing key, newest first (Security or Identity Domain Administrator)",
                        "responses": with_errors(json!({"200": {"description": "the keys", "content": json_content(list_of("SigningKey"))}}))},
                "post": {"operationId": "rotateSigningKey", "summary": "Rotate: a new key, published now and signing from activates_at (keys.publish_ahead later; 409 while another waits), or at once with now=true (the emergency path); the previous one keeps verifying until its tokens expire",
                         "requestBody": {"required": false, "content": json_content(json!({
                             "type": "object", "additionalProperties": false,
                             "properties": {"alg": {"type": "string", "enum": ["RS256", "RS256-3072", "ES256", "EdDSA"]},
                                            "now": {"type": "boolean", "description": "sign at once (emergency): verifiers that cached the JWKS refuse the new key's tokens until they fetch it again"}}}))},
                         "responses": with_errors(json!({"201": {"description": "the new key", "content": json_content(reference("SigningKey"))}}))}
            },
            "/admin/v1/openapi.json": {
                "get": {"operationId": "openapi", "summary": "This document", "security": [],
                        "responses": {"200": {"description": "OpenAPI 3.1", "content": json_content(json!({"type": "object"}))}}}
            }
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "AppInput": app_input,
                "App": app,
                "ResourceServerInput": server_input,
                "ResourceServer": server,
                "SigningKey": key,
                "Error": scim_error
            },
            "responses": {
                "Invalid": {"description": "invalid input (SCIM error, scimType invalidValue or invalidSyntax)", "content": error_body},
                "Unauthorized": {"description": "no valid bearer token (RFC 6750 invalid_token)"},
                "Forbidden": {"description": "the token lacks the role or scope (RFC 6750 insufficient_scope)"},
                "NotFound": {"description": "no such resource", "content": error_body},
                "Conflict": {"description": "it exists already, or is in use", "content": error_body},
                "Unavailable": {"description": "the database is unreachable; retry after Retry-After", "content": error_body}
            }
        }
    })
}
