//! Request names: what a request is grouped under in the tables.
//!
//! Without an explicit `name`, a request is named by its path. Paths that embed ids
//! (`/cities/4b1c…`, `/users/42`) would create one table row per request, so id-like path
//! segments are replaced by placeholders and the summary says how many requests were grouped.

/// Returns the request name for `path` and whether an id-like segment was replaced.
pub fn auto_name(path: &str) -> (String, bool) {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut out = String::with_capacity(path.len());
    let mut grouped = false;
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match placeholder(segment) {
            Some(p) => {
                out.push_str(p);
                grouped = true;
            }
            None => out.push_str(segment),
        }
    }
    (out, grouped)
}

fn placeholder(segment: &str) -> Option<&'static str> {
    if segment.is_empty() {
        return None;
    }
    if uuid::Uuid::try_parse(segment).is_ok() {
        return Some("[uuid]");
    }
    let digits = segment.bytes().all(|b| b.is_ascii_digit());
    let long_hex = segment.len() >= 16 && segment.bytes().all(|b| b.is_ascii_hexdigit());
    (digits || long_hex).then_some("[id]")
}

/// Caps the number of distinct request names; requests past the cap are grouped under one
/// overflow name so a script that names requests by ids cannot exhaust memory.
#[derive(Debug, Clone, Copy)]
pub struct NameCap(pub usize);

impl NameCap {
    pub const OVERFLOW: &'static str = "(other names)";
    pub const DEFAULT: NameCap = NameCap(500);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_are_grouped() {
        let (n, g) = auto_name("/cities/6f1f3b0c-5d0a-4c56-9f4e-3d2b0f8a7c11?x=1");
        assert_eq!((n.as_str(), g), ("/cities/[uuid]", true));
        let (n, g) = auto_name("/users/42/items/abc");
        assert_eq!((n.as_str(), g), ("/users/[id]/items/abc", true));
        let (n, g) = auto_name("/health");
        assert_eq!((n.as_str(), g), ("/health", false));
        let (n, _) = auto_name("/v2/objects/0123456789abcdef0123");
        assert_eq!(n, "/v2/objects/[id]");
    }
}
