//! The SCIM `filter` query parameter, as a list request handles it:
//! parse, then resolve against the User and the Group schema. Also the
//! PATCH/sortBy path parser, which shares the grammar.
#![no_main]

use latchkey_core::scim::filter::{parse_filter, parse_patch_path};
use latchkey_core::scim::group::GroupSchema;
use latchkey_core::scim::query::resolve;
use latchkey_core::scim::user::UserSchema;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_patch_path(text);
    let Ok(filter) = parse_filter(text) else {
        return;
    };
    for resolved in [
        resolve::<UserSchema>(&filter).map(drop),
        resolve::<GroupSchema>(&filter).map(drop),
    ] {
        if let Err(e) = resolved {
            assert_eq!((e.status, e.scim_type), (400, Some("invalidFilter")), "{e}");
        }
    }
});
