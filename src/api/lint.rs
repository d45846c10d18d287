//! What `check` (and `run`, before traffic) finds in calls to the script API that Rhai's
//! compiler cannot: an unknown key in a request's options map, written as a literal, is a
//! typo that would otherwise fail every iteration at run time.

use rhai::{ASTNode, Expr};

use crate::script::location;

/// The functions of the `http` module that take an options map.
const TAKES_OPTIONS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "request"];

/// One problem per unknown key, as `file:line:column: …`.
pub fn requests(ast: &rhai::AST, name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        // A map literal passed straight to an http function: the call is its parent (an
        // expression, or a statement when its result is not used).
        let [.., parent, ASTNode::Expr(arg)] = path else {
            return true;
        };
        let call = match parent {
            ASTNode::Expr(Expr::FnCall(call, _)) => call,
            ASTNode::Stmt(rhai::Stmt::FnCall(call, _)) => call,
            _ => return true,
        };
        if !(call.namespace.path.len() == 1
            && call.namespace.path[0].name == "http"
            && TAKES_OPTIONS.contains(&call.name.as_str()))
        {
            return true;
        }
        for (key, pos) in literal_keys(arg) {
            if !super::http::OPTIONS.contains(&key.as_str()) {
                problems.push(format!(
                    "{}: unknown request option `{key}` in http::{} (known: {})",
                    location(name, pos),
                    call.name,
                    super::http::OPTIONS.join(", ")
                ));
            }
        }
        true
    });
    problems
}

/// The keys of a map literal with where each is written (a literal of constants may have
/// been folded into one value by the optimizer: then the map's own position).
fn literal_keys(expr: &Expr) -> Vec<(String, rhai::Position)> {
    match expr {
        Expr::Map(map, _) => map
            .0
            .iter()
            .map(|(k, _)| (k.name.to_string(), k.pos))
            .collect(),
        Expr::DynamicConstant(value, pos) => value
            .read_lock::<rhai::Map>()
            .map(|m| m.keys().map(|k| (k.to_string(), *pos)).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unknown_keys_are_named_with_their_place() {
        let engine = super::super::engine();
        let ast = engine
            .compile(
                "fn t() {\n  let q = 1;\n  http::get(\"/a\", #{ allow_redirect: false, name: \"a\" });\n  \
                 http::request(\"GET\", \"/b\", #{ timeout: q, expcet: 200 });\n  \
                 http::post(\"/c\", #{ json: #{ anything: 1 } });\n}",
            )
            .unwrap();
        let problems = super::requests(&ast, "s.rhai");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].starts_with("s.rhai:3:"), "{}", problems[0]);
        assert!(
            problems[0].contains("`allow_redirect` in http::get"),
            "{}",
            problems[0]
        );
        assert!(problems[1].starts_with("s.rhai:4:"), "{}", problems[1]);
        assert!(problems[1].contains("`expcet`"), "{}", problems[1]);
    }
}
