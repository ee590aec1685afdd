//! `${NAME}` references in configuration values, resolved against the environment.
//!
//! Written by hand rather than with a shell-expansion crate on purpose: only the braced form is
//! expanded, so secrets and URLs that merely contain `$` or `~` are left alone, and `$${` escapes
//! a literal `${`.

use anyhow::bail;
use figment::value::Value;

/// Replaces `${NAME}` in every string of `value` with `lookup(NAME)`; an unknown name is an error.
pub(crate) fn interpolate(value: Value, lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Value> {
    Ok(match value {
        Value::String(tag, s) => Value::String(tag, expand(&s, lookup)?),
        Value::Dict(tag, dict) => Value::Dict(
            tag,
            dict.into_iter().map(|(k, v)| Ok((k, interpolate(v, lookup)?))).collect::<anyhow::Result<_>>()?,
        ),
        Value::Array(tag, items) => Value::Array(
            tag,
            items.into_iter().map(|v| interpolate(v, lookup)).collect::<anyhow::Result<_>>()?,
        ),
        other => other,
    })
}

/// Expands the references in one string.
fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(reference) = after.strip_prefix("${") {
            let Some(end) = reference.find('}') else {
                bail!("unclosed ${{ in configuration value {input:?}");
            };
            let name = &reference[..end];
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => bail!("configuration value {input:?} references ${{{name}}}, which is not set"),
            }
            rest = &reference[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KINO_HOST" => Some("media.example".to_owned()),
            "PORT" => Some("8443".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn braced_references_are_replaced() {
        let got = expand("https://${KINO_HOST}:${PORT}/", &env).unwrap();
        assert_eq!(got, "https://media.example:8443/");
    }

    #[test]
    fn bare_dollars_and_escapes_stay_literal() {
        assert_eq!(expand("pa$$word $HOME", &env).unwrap(), "pa$$word $HOME");
        assert_eq!(expand("$${KINO_HOST}", &env).unwrap(), "${KINO_HOST}");
    }

    #[test]
    fn unknown_or_unclosed_references_are_errors() {
        let err = expand("${NOPE}", &env).unwrap_err().to_string();
        assert!(err.contains("${NOPE}"), "{err}");
        assert!(expand("${KINO_HOST", &env).is_err());
    }

    #[test]
    fn nested_values_are_expanded() {
        let value = Value::from(vec![Value::from("${PORT}".to_owned())]);
        let Value::Array(_, items) = interpolate(value, &env).unwrap() else { panic!() };
        assert_eq!(items[0].as_str(), Some("8443"));
    }
}
