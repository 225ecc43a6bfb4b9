//! Where the role is in the JWT claims (`pg_rest.jwt_role_claim_key`), in PostgREST's path
//! syntax: `.role`, `."https://x.io/claims".role`, `.roles[0]`, and a last step that filters an
//! array of strings, `.roles[?(@ == "admin")]` with `==`, `!=`, `^==` (starts with), `==^`
//! (ends with) and `*==` (contains). The `$`-rooted form of PostgREST v16's default
//! (`$.role`, `$['https://x.io/claims'].role`, `$.roles[0]`) is read as the same steps.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    /// An array index; negative counts from the end (`$` form only).
    Index(i64),
    /// The first string element of an array that matches.
    Filter(FilterOp, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Equals,
    NotEquals,
    StartsWith,
    EndsWith,
    Contains,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsPath {
    pub steps: Vec<Step>,
}

impl JsPath {
    /// Parses a path; the error says why, for the setting's check hook.
    pub fn parse(text: &str) -> Result<JsPath, String> {
        let text = text.trim();
        let (mut rest, dollar) = match text.strip_prefix('$') {
            Some(r) => (r, true),
            None => (text, false),
        };
        if !dollar && !rest.starts_with('.') {
            return Err("a path starts with '.' or '$', e.g. .role".into());
        }
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if matches!(steps.last(), Some(Step::Filter(..))) {
                return Err("a [?(...)] filter must be the last step".into());
            }
            let (step, after) = parse_step(rest, dollar)?;
            steps.push(step);
            rest = after;
        }
        if steps.is_empty() {
            return Err("a path needs at least one step, e.g. .role".into());
        }
        Ok(JsPath { steps })
    }

    /// The value the path leads to in `claims`, if any.
    pub fn find<'a>(&self, claims: &'a Value) -> Option<&'a Value> {
        let mut at = claims;
        for step in &self.steps {
            at = match step {
                Step::Key(k) => at.as_object()?.get(k)?,
                Step::Index(i) => {
                    let items = at.as_array()?;
                    let i = if *i < 0 { items.len() as i64 + i } else { *i };
                    items.get(usize::try_from(i).ok()?)?
                }
                Step::Filter(op, operand) => at
                    .as_array()?
                    .iter()
                    .find(|v| v.as_str().is_some_and(|s| op.matches(s, operand)))?,
            };
        }
        Some(at)
    }
}

impl FilterOp {
    fn matches(self, s: &str, operand: &str) -> bool {
        match self {
            FilterOp::Equals => s == operand,
            FilterOp::NotEquals => s != operand,
            FilterOp::StartsWith => s.starts_with(operand),
            FilterOp::EndsWith => s.ends_with(operand),
            FilterOp::Contains => s.contains(operand),
        }
    }
}

fn parse_step(rest: &str, dollar: bool) -> Result<(Step, &str), String> {
    if let Some(after) = rest.strip_prefix(".\"") {
        let end = after.find('"').ok_or("unterminated quoted key")?;
        return Ok((Step::Key(after[..end].to_string()), &after[end + 1..]));
    }
    if let Some(after) = rest.strip_prefix('.') {
        let end = after.find(['.', '[']).unwrap_or(after.len());
        if end == 0 {
            return Err("empty key in path".into());
        }
        return Ok((Step::Key(after[..end].to_string()), &after[end..]));
    }
    if let Some(after) = rest.strip_prefix("[?(") {
        let end = after.find(")]").ok_or("unterminated [?(...)] filter")?;
        return Ok((parse_filter(&after[..end])?, &after[end + 2..]));
    }
    if dollar {
        for quote in ['\'', '"'] {
            if let Some(after) = rest.strip_prefix(['[']).and_then(|r| r.strip_prefix(quote)) {
                let end = after.find(quote).ok_or("unterminated quoted key")?;
                let tail = after[end + 1..]
                    .strip_prefix(']')
                    .ok_or("expected ] after a quoted key")?;
                return Ok((Step::Key(after[..end].to_string()), tail));
            }
        }
    }
    if let Some(after) = rest.strip_prefix('[') {
        let end = after.find(']').ok_or("unterminated [index]")?;
        let index: i64 = after[..end]
            .trim()
            .parse()
            .map_err(|_| "an [index] must be a number")?;
        if index < 0 && !dollar {
            return Err("an [index] must not be negative".into());
        }
        return Ok((Step::Index(index), &after[end + 1..]));
    }
    Err(format!("unexpected \"{rest}\" in path"))
}

/// `@ <op> "string"`.
fn parse_filter(body: &str) -> Result<Step, String> {
    let body = body
        .trim()
        .strip_prefix('@')
        .ok_or("a filter reads @ <op> \"string\"")?
        .trim_start();
    let ops = [
        ("^==", FilterOp::StartsWith),
        ("==^", FilterOp::EndsWith),
        ("*==", FilterOp::Contains),
        ("==", FilterOp::Equals),
        ("!=", FilterOp::NotEquals),
    ];
    let (op, operand) = ops
        .iter()
        .find_map(|(token, op)| body.strip_prefix(token).map(|r| (*op, r.trim())))
        .ok_or("a filter's operator is one of ==, !=, ^==, ==^, *==")?;
    let operand = operand
        .strip_prefix('"')
        .and_then(|o| o.strip_suffix('"'))
        .ok_or("a filter compares with a \"quoted string\"")?;
    Ok(Step::Filter(op, operand.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, claims: Value) -> Option<Value> {
        JsPath::parse(path).unwrap().find(&claims).cloned()
    }

    #[test]
    fn keys_quoted_keys_and_indexes() {
        assert_eq!(find(".role", json!({"role": "web"})), Some(json!("web")));
        assert_eq!(
            find(
                ".\"https://x.io/claims\".role",
                json!({"https://x.io/claims": {"role": "admin"}})
            ),
            Some(json!("admin"))
        );
        assert_eq!(
            find(".roles[1]", json!({"roles": ["a", "b"]})),
            Some(json!("b"))
        );
        assert_eq!(find(".roles[2]", json!({"roles": ["a", "b"]})), None);
        assert_eq!(find(".a.b", json!({"a": 1})), None);
    }

    #[test]
    fn dollar_forms() {
        assert_eq!(find("$.role", json!({"role": "r"})), Some(json!("r")));
        assert_eq!(
            find("$['https://x'].role", json!({"https://x": {"role": "q"}})),
            Some(json!("q"))
        );
        assert_eq!(
            find("$[\"a b\"][-1]", json!({"a b": [1, 2, 3]})),
            Some(json!(3))
        );
    }

    #[test]
    fn filters_pick_the_first_matching_string() {
        let claims = json!({"roles": [1, "app_user", "app_admin", "other"]});
        assert_eq!(
            find(".roles[?(@ == \"other\")]", claims.clone()),
            Some(json!("other"))
        );
        assert_eq!(
            find(".roles[?(@ ^== \"app\")]", claims.clone()),
            Some(json!("app_user"))
        );
        assert_eq!(
            find(".roles[?(@==^\"admin\")]", claims.clone()),
            Some(json!("app_admin"))
        );
        assert_eq!(
            find(".roles[?(@ *== \"the\")]", claims.clone()),
            Some(json!("other"))
        );
        assert_eq!(
            find(".roles[?(@ != \"app_user\")]", claims.clone()),
            Some(json!("app_admin"))
        );
        assert_eq!(find(".roles[?(@ == \"nope\")]", claims), None);
    }

    #[test]
    fn bad_paths_say_why() {
        for bad in [
            "role",
            "",
            ".",
            ".a..b",
            ".\"open",
            ".a[x]",
            ".a[-1]",
            ".a[?(@ = \"x\")]",
            ".a[?(@ == x)]",
            ".a[?(@ == \"x\")].b",
        ] {
            assert!(JsPath::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
