//! Pub/Sub resource names, `projects/{project}/topics/{topic}` and
//! `projects/{project}/subscriptions/{subscription}`, checked with Pub/Sub's
//! rules so that a name Google would refuse is refused here too, with the reason.

use std::fmt;

/// What a resource name names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `projects/{p}/topics/{t}`.
    Topic,
    /// `projects/{p}/subscriptions/{s}`.
    Subscription,
}

impl Kind {
    fn collection(self) -> &'static str {
        match self {
            Kind::Topic => "topics",
            Kind::Subscription => "subscriptions",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Topic => "topic",
            Kind::Subscription => "subscription",
        }
    }
}

/// A checked resource name; `Display` gives it back in full.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceName {
    /// `topics` or `subscriptions`.
    pub kind: Kind,
    /// The project id.
    pub project: String,
    /// The topic or subscription id.
    pub id: String,
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "projects/{}/{}/{}",
            self.project,
            self.kind.collection(),
            self.id
        )
    }
}

/// Parses `name` as a `kind` name. The error says what is wrong, without the name.
pub fn parse(name: &str, kind: Kind) -> Result<ResourceName, String> {
    let expected = || {
        format!(
            "is not a {} name: expected projects/{{project}}/{}/{{{}}}",
            kind.noun(),
            kind.collection(),
            kind.noun()
        )
    };
    let parts: Vec<&str> = name.split('/').collect();
    let [projects, project, collection, id] = parts.as_slice() else {
        return Err(expected());
    };
    if *projects != "projects" || *collection != kind.collection() {
        return Err(expected());
    }
    project_id(project).map_err(|why| format!("has an invalid project id: {why}"))?;
    resource_id(id).map_err(|why| format!("has an invalid {} id: {why}", kind.noun()))?;
    Ok(ResourceName {
        kind,
        project: (*project).to_owned(),
        id: (*id).to_owned(),
    })
}

/// `projects/{project}`, as the list calls take it; returns the project id.
pub fn parse_project(name: &str) -> Result<&str, String> {
    let Some(project) = name.strip_prefix("projects/") else {
        return Err("is not a project name: expected projects/{project}".into());
    };
    project_id(project).map_err(|why| format!("has an invalid project id: {why}"))?;
    Ok(project)
}

/// Pub/Sub's rule for a topic (or subscription) id: 3 to 255 characters, a letter
/// first, then letters, digits and `-_.~+%`, not starting with `goog`.
pub fn resource_id(id: &str) -> Result<(), String> {
    let len = id.chars().count();
    if !(3..=255).contains(&len) {
        return Err(format!("it is {len} characters; use 3 to 255"));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("it must start with a letter".into());
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.~+%".contains(*c)))
    {
        return Err(format!(
            "{bad:?} is not allowed (letters, digits and - _ . ~ + % are)"
        ));
    }
    if id.len() >= 4 && id[..4].eq_ignore_ascii_case("goog") {
        return Err("it must not start with 'goog'".into());
    }
    Ok(())
}

/// A Google Cloud project id: lower-case letters, digits and hyphens, a letter first,
/// at most 63 characters, optionally scoped by a domain (`example.com:my-project`).
/// Google's 6-character minimum is not enforced: short ids such as `acme` are common
/// in self-hosted set-ups.
pub fn project_id(id: &str) -> Result<(), String> {
    let (domain, name) = match id.rsplit_once(':') {
        Some((domain, name)) => (Some(domain), name),
        None => (None, id),
    };
    if let Some(domain) = domain
        && (domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'))
    {
        return Err("the domain before ':' must be a lower-case domain name".into());
    }
    if name.is_empty() || name.len() > 63 {
        return Err(format!("it is {} characters; use 1 to 63", name.len()));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("it must start with a lower-case letter".into());
    }
    if name.ends_with('-') {
        return Err("it must not end with '-'".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "{bad:?} is not allowed (lower-case letters, digits and - are)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refusals_say_why() {
        let n = parse("projects/acme/subscriptions/backend", Kind::Subscription)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.to_string(), "projects/acme/subscriptions/backend");
        assert_eq!(n.project, "acme");
        let refused = |s: &str, k| parse(s, k).err().unwrap_or_default();
        assert!(refused("projects/acme/topics/backend", Kind::Subscription).contains("expected"));
        assert!(refused("projects/acme/subscriptions/b", Kind::Subscription).contains("3 to 255"));
        assert!(refused("projects/A/topics/abc", Kind::Topic).contains("invalid project id"));
        assert!(
            refused("projects/a/topics/googx", Kind::Topic).contains("must not start with 'goog'")
        );
        assert_eq!(parse_project("projects/acme"), Ok("acme"));
        assert!(parse_project("acme").is_err());
    }
}
