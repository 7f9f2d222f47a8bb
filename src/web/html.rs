//! HTML escaped by construction: an [`Html`] type for markup our own code built, and a
//! single-pass `{{ name }}` template filler whose slots take either escaped text or `Html`.
//!
//! There is no way to put a `String` into a page without going through [`escape`] or a template
//! in `templates/`. Slot values are written once and never scanned again, so a value holding
//! `{{ x }}` stays literal text. An unknown or missing slot is an error (tests render every
//! template). Not here: loops or conditionals in templates (Rust code builds repeated fragments
//! from their own small templates and joins them).

use crate::error::{Error, Result};

/// Markup built by our own code from templates and escaped values; safe to insert as is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// The markup (tests read it).
    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The markup as a page body.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Escaped text as markup.
    pub fn text(text: &str) -> Html {
        Html(escape(text))
    }

    /// Joins fragments.
    pub fn concat(parts: impl IntoIterator<Item = Html>) -> Html {
        Html(parts.into_iter().map(|h| h.0).collect())
    }
}

/// One slot's value.
#[derive(Debug, Clone, Copy)]
pub enum Slot<'a> {
    /// Text from anywhere: escaped for text and quoted attributes.
    Text(&'a str),
    /// Markup our code built.
    Html(&'a Html),
}

/// Escapes `& < > " '` so the text is safe in element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `template`'s `{{ name }}` slots in one pass. Every slot in the template must be given
/// and every value given must be used, so a renamed slot fails loudly in tests.
pub fn render(template: &str, slots: &[(&str, Slot<'_>)]) -> Result<Html> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut used = vec![false; slots.len()];
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| Error::Config("template: unclosed {{".into()))?;
        let name = after[..close].trim();
        let index = slots
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| Error::Config(format!("template: no value for slot {name:?}")))?;
        used[index] = true;
        match slots[index].1 {
            Slot::Text(t) => out.push_str(&escape(t)),
            Slot::Html(h) => out.push_str(&h.0),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(Error::Config(format!(
            "template: value for {:?} has no slot",
            slots[i].0
        )));
    }
    Ok(Html(out))
}

/// Percent-encodes a value for a URL query or path segment in a link.
pub fn url_component(text: &str) -> String {
    crate::oci::encode::component(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("日本 ok"), "日本 ok");
    }

    #[test]
    fn fills_in_one_pass_and_never_rescans_values() {
        let inner = Html::text("<b>");
        let page = render(
            "<p title=\"{{ a }}\">{{b}}</p>{{ a }}",
            &[("a", Slot::Text("{{ b }}\"<")), ("b", Slot::Html(&inner))],
        )
        .unwrap();
        assert_eq!(
            page.as_str(),
            "<p title=\"{{ b }}&quot;&lt;\">&lt;b&gt;</p>{{ b }}&quot;&lt;"
        );
    }

    #[test]
    fn missing_and_unused_slots_are_errors() {
        assert!(render("{{ a }}", &[]).is_err());
        assert!(render("x", &[("a", Slot::Text(""))]).is_err());
        assert!(render("{{ a", &[("a", Slot::Text(""))]).is_err());
    }
}
