//! IAM for the emulator: who is calling (a [`Principal`]), which policy statements apply to it,
//! and whether they grant what an operation needs.
//!
//! The statements come from `terraform/policies.tpl`, the file Terraform's `templatefile()`
//! fills for the deployment; [`fill_template`] fills it with the emulator's own names, so local
//! runs live under the deployed rules. Evaluation follows `oci-iam.md` §2: policies only allow;
//! a request is allowed when every permission it needs is granted by some statement whose
//! subject covers the principal, whose location covers the target compartment and whose `where`
//! clause holds (names compared without regard to case; a variable the request does not have
//! makes its clause false). Verbs are cumulative per resource type (§4).
//!
//! Only the statement forms the template uses are parsed: `Allow dynamic-group|group|service
//! NAME[, NAME] to VERB RESOURCE-TYPE in compartment id OCID|tenancy [where CONDITION]`, with
//! conditions of `=`/`!=` clauses on quoted values nested in `any {…}`/`all {…}`. Anything else
//! (permission lists, `any-user`, compartments by name, `define`/`endorse`, patterns, time
//! variables) is refused with a message naming the statement. Dynamic groups are the template's
//! two (`ALL {resource.type = T, resource.compartment.id = C}`, as in iam.tf); users are in the
//! groups they were trusted with, and group `Administrators` holds the tenancy's built-in
//! statement [`ADMIN_STATEMENT`], as in every OCI tenancy.
//!
//! Permission names are Oracle's where its policy reference lists them (objects, buckets,
//! secret bundles, functions); for Vision, whose reference lists none, the emulator uses its own
//! name, `AI_SERVICE_VISION_ANALYZE_IMAGE`, granted by `use ai-service-vision-family`.

use std::fmt;

use crate::error::{Error, Result};

/// The policy template, as Terraform reads it.
pub const POLICY_TEMPLATE: &str = include_str!("../../terraform/policies.tpl");

/// The statement every tenancy has and nobody can delete: its administrators may do anything.
pub const ADMIN_STATEMENT: &str = "Allow group Administrators to manage all-resources in tenancy";

/// The group [`ADMIN_STATEMENT`] names.
pub const ADMINISTRATORS: &str = "Administrators";

/// The resource type of a Container Instance principal (the web app in OCI).
pub const CONTAINER_INSTANCE: &str = "computecontainerinstance";
/// The resource type of a function's principal.
pub const FUNCTION: &str = "fnfunc";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user (API key), member of `groups`.
    User {
        /// The user's OCID.
        id: String,
        /// Group names.
        groups: Vec<String>,
    },
    /// A resource principal: a function or a container instance.
    Resource {
        /// `fnfunc`, `computecontainerinstance`, …
        resource_type: String,
        /// The resource's OCID.
        id: String,
        /// Its compartment.
        compartment_id: String,
    },
    /// An OCI service acting on its own (`cloudEvents` delivering events).
    Service(String),
}

impl Principal {
    /// A tenancy administrator (group `Administrators`).
    pub fn administrator(id: &str) -> Principal {
        Principal::User {
            id: id.into(),
            groups: vec![ADMINISTRATORS.into()],
        }
    }

    /// The `request.principal.type` of this principal.
    fn kind(&self) -> &str {
        match self {
            Principal::User { .. } => "user",
            Principal::Resource { resource_type, .. } => resource_type,
            Principal::Service(_) => "service",
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User { id, groups } => write!(f, "user {id} (groups {groups:?})"),
            Principal::Resource {
                resource_type, id, ..
            } => write!(f, "{resource_type} {id}"),
            Principal::Service(name) => write!(f, "service {name}"),
        }
    }
}

/// A dynamic group: every resource of one type in one compartment (the rule form iam.tf uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicGroup {
    /// Its name, as statements name it.
    pub name: String,
    /// `resource.type`.
    pub resource_type: String,
    /// `resource.compartment.id`.
    pub compartment_id: String,
}

/// What the template's variables are filled with.
#[derive(Debug, Clone)]
pub struct PolicyNames {
    /// The function's dynamic group (`function_dg`).
    pub function_dg: String,
    /// The web app's dynamic group (`webapp_dg`).
    pub webapp_dg: String,
    /// The compartment of everything (`compartment_id`).
    pub compartment_id: String,
    /// The images bucket (`bucket`).
    pub bucket: String,
    /// The database password secret (`db_secret_id`).
    pub db_secret_id: String,
    /// The secrets the web app may read (`app_secret_condition` is built from them as iam.tf
    /// builds it: one `target.secret.id` clause, or `any {…}` of several).
    pub app_secret_ids: Vec<String>,
    /// `app_vision_access`.
    pub app_vision_access: bool,
}

impl PolicyNames {
    /// The two dynamic groups these names define, with the rules of iam.tf.
    pub fn dynamic_groups(&self) -> Vec<DynamicGroup> {
        vec![
            DynamicGroup {
                name: self.webapp_dg.clone(),
                resource_type: CONTAINER_INSTANCE.into(),
                compartment_id: self.compartment_id.clone(),
            },
            DynamicGroup {
                name: self.function_dg.clone(),
                resource_type: FUNCTION.into(),
                compartment_id: self.compartment_id.clone(),
            },
        ]
    }

    fn app_secret_condition(&self) -> String {
        let clause = |id: &String| format!("target.secret.id = '{id}'");
        match self.app_secret_ids.as_slice() {
            [] => clause(&self.db_secret_id),
            [one] => clause(one),
            many => format!(
                "any {{{}}}",
                many.iter().map(clause).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Fills `template` as Terraform's `templatefile()` would for the forms it uses (`${name}`, and
/// `%{ if name ~}` … `%{ endif ~}` lines around statements), and returns the statements: one
/// per non-blank line that is not a `#` comment.
pub fn fill_template(template: &str, names: &PolicyNames) -> Result<Vec<String>> {
    let strings = [
        ("function_dg", names.function_dg.clone()),
        ("webapp_dg", names.webapp_dg.clone()),
        ("compartment_id", names.compartment_id.clone()),
        ("bucket", names.bucket.clone()),
        ("db_secret_id", names.db_secret_id.clone()),
        ("app_secret_condition", names.app_secret_condition()),
    ];
    let flags = [("app_vision_access", names.app_vision_access)];
    let mut out = Vec::new();
    let mut skipping: Option<bool> = None;
    for (number, line) in template.lines().enumerate() {
        let trimmed = line.trim();
        let error =
            |what: &str| Error::Config(format!("policy template line {}: {what}", number + 1));
        if let Some(directive) = trimmed.strip_prefix("%{") {
            let words: Vec<&str> = directive
                .trim_end_matches('}')
                .trim_end_matches('~')
                .split_whitespace()
                .collect();
            match words.as_slice() {
                ["if", flag] if skipping.is_none() => {
                    let value = flags
                        .iter()
                        .find(|(name, _)| name == flag)
                        .ok_or_else(|| error(&format!("unknown flag {flag:?}")))?
                        .1;
                    skipping = Some(!value);
                }
                ["endif"] if skipping.is_some() => skipping = None,
                _ => return Err(error(&format!("unsupported directive {trimmed:?}"))),
            }
            continue;
        }
        if skipping == Some(true) || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut filled = String::new();
        let mut rest = trimmed;
        while let Some(start) = rest.find("${") {
            filled.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| error("unclosed ${"))?;
            let name = &rest[start + 2..start + end];
            let value = strings
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| error(&format!("unknown variable {name:?}")))?;
            filled.push_str(&value.1);
            rest = &rest[start + end + 1..];
        }
        filled.push_str(rest);
        out.push(filled);
    }
    if skipping.is_some() {
        return Err(Error::Config(
            "policy template: %{ if } without %{ endif }".into(),
        ));
    }
    Ok(out)
}

/// A parsed policy: the statements in force and the dynamic groups they may name.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
    dynamic_groups: Vec<DynamicGroup>,
}

#[derive(Debug, Clone)]
struct Statement {
    text: String,
    subject: Subject,
    permissions: Vec<&'static str>,
    location: Location,
    condition: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    Groups(Vec<String>),
    DynamicGroups(Vec<String>),
    Services(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Tenancy,
    Compartment(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Clause {
        variable: String,
        negated: bool,
        value: String,
    },
    Any(Vec<Condition>),
    All(Vec<Condition>),
}

/// What one operation needs: one of `permissions` (usually exactly one) on a resource in
/// `compartment_id`, described by `variables` (`target.bucket.name`, …).
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// Alternatives: any one of them suffices (HeadObject takes READ or INSPECT).
    pub permissions: &'a [&'static str],
    /// Where the target lives.
    pub compartment_id: &'a str,
    /// The request's variables, names as in policies.
    pub variables: Vec<(&'static str, String)>,
}

impl Policy {
    /// Parses `statements` (plus [`ADMIN_STATEMENT`]) with `dynamic_groups` defined.
    pub fn parse(statements: &[String], dynamic_groups: Vec<DynamicGroup>) -> Result<Policy> {
        let mut parsed = vec![parse_statement(ADMIN_STATEMENT)?];
        for text in statements {
            parsed.push(parse_statement(text)?);
        }
        Ok(Policy {
            statements: parsed,
            dynamic_groups,
        })
    }

    /// The statements as given (without the built-in administrator statement).
    pub fn statements(&self) -> Vec<&str> {
        self.statements[1..]
            .iter()
            .map(|s| s.text.as_str())
            .collect()
    }

    /// Whether `principal` may do what `access` describes.
    pub fn allows(&self, principal: &Principal, access: &Access<'_>) -> bool {
        access.permissions.iter().any(|permission| {
            self.statements
                .iter()
                .any(|statement| self.grants(statement, principal, permission, access))
        })
    }

    fn grants(
        &self,
        statement: &Statement,
        principal: &Principal,
        permission: &str,
        access: &Access<'_>,
    ) -> bool {
        let subject = match (&statement.subject, principal) {
            (Subject::Groups(names), Principal::User { groups, .. }) => names
                .iter()
                .any(|n| groups.iter().any(|g| g.eq_ignore_ascii_case(n))),
            (
                Subject::DynamicGroups(names),
                Principal::Resource {
                    resource_type,
                    compartment_id,
                    ..
                },
            ) => self.dynamic_groups.iter().any(|group| {
                names.iter().any(|n| n.eq_ignore_ascii_case(&group.name))
                    && group.resource_type.eq_ignore_ascii_case(resource_type)
                    && group.compartment_id == *compartment_id
            }),
            (Subject::Services(names), Principal::Service(name)) => {
                names.iter().any(|n| n.eq_ignore_ascii_case(name))
            }
            _ => false,
        };
        let located = match &statement.location {
            Location::Tenancy => true,
            Location::Compartment(id) => id == access.compartment_id,
        };
        if !(subject && located && statement.permissions.contains(&permission)) {
            return false;
        }
        let Some(condition) = &statement.condition else {
            return true;
        };
        let lookup = |name: &str| -> Option<String> {
            match name {
                "request.permission" => Some(permission.to_string()),
                "request.principal.type" => Some(principal.kind().to_string()),
                "request.principal.id" => match principal {
                    Principal::User { id, .. } | Principal::Resource { id, .. } => Some(id.clone()),
                    Principal::Service(_) => None,
                },
                "request.principal.compartment.id" => match principal {
                    Principal::Resource { compartment_id, .. } => Some(compartment_id.clone()),
                    _ => None,
                },
                "target.compartment.id" => Some(access.compartment_id.to_string()),
                other => access
                    .variables
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(other))
                    .map(|(_, v)| v.clone()),
            }
        };
        evaluate(condition, &lookup)
    }
}

fn evaluate(condition: &Condition, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    match condition {
        Condition::Clause {
            variable,
            negated,
            value,
        } => match lookup(variable) {
            // A variable the request does not have makes the clause false, `!=` included.
            None => false,
            Some(actual) => actual.eq_ignore_ascii_case(value) != *negated,
        },
        Condition::Any(list) => list.iter().any(|c| evaluate(c, lookup)),
        Condition::All(list) => list.iter().all(|c| evaluate(c, lookup)),
    }
}

/// The permissions `verb` grants on `resource_type` (verbs are cumulative), or `None` for a
/// resource type the emulator does not know. Types the emulator has no operation for (`repos`,
/// `virtual-network-family`) are known and grant nothing it checks.
fn permissions(resource_type: &str, verb: usize) -> Option<Vec<&'static str>> {
    // Per type: what inspect, read, use and manage each add.
    let levels: &[&[&'static str]; 4] = match resource_type {
        "objects" => &[
            &["OBJECT_INSPECT"],
            &["OBJECT_READ"],
            &["OBJECT_OVERWRITE"],
            &[
                "OBJECT_CREATE",
                "OBJECT_DELETE",
                "OBJECT_VERSION_DELETE",
                "OBJECT_RESTORE",
                "OBJECT_UPDATE_TIER",
            ],
        ],
        "buckets" => &[
            &["BUCKET_INSPECT"],
            &["BUCKET_READ"],
            &["BUCKET_UPDATE"],
            &["BUCKET_CREATE", "BUCKET_DELETE", "PAR_MANAGE"],
        ],
        "objectstorage-namespaces" => &[
            &[],
            &["OBJECTSTORAGE_NAMESPACE_READ"],
            &[],
            &["OBJECTSTORAGE_NAMESPACE_UPDATE"],
        ],
        "secret-bundles" => &[
            &["SECRET_BUNDLE_INSPECT"],
            &["SECRET_BUNDLE_READ"],
            &[],
            &[],
        ],
        "secrets" => &[
            &["SECRET_INSPECT"],
            &["SECRET_READ"],
            &[],
            &["SECRET_CREATE", "SECRET_UPDATE", "SECRET_DELETE"],
        ],
        "fn-invocation" => &[&[], &[], &["FN_INVOCATION"], &[]],
        "fn-function" => &[
            &["FN_FUNCTION_LIST"],
            &["FN_FUNCTION_READ"],
            &[],
            &[
                "FN_FUNCTION_CREATE",
                "FN_FUNCTION_UPDATE",
                "FN_FUNCTION_DELETE",
            ],
        ],
        "fn-app" => &[
            &["FN_APP_LIST"],
            &["FN_APP_READ"],
            &[],
            &["FN_APP_CREATE", "FN_APP_UPDATE", "FN_APP_DELETE"],
        ],
        "ai-service-vision-family" => &[&[], &[], &["AI_SERVICE_VISION_ANALYZE_IMAGE"], &[]],
        "repos" | "virtual-network-family" => &[&[], &[], &[], &[]],
        "object-family" => {
            return family(&["objectstorage-namespaces", "buckets", "objects"], verb)
        }
        "secret-family" => return family(&["secrets", "secret-bundles"], verb),
        "functions-family" => return family(&["fn-app", "fn-function", "fn-invocation"], verb),
        "all-resources" => {
            return family(
                &[
                    "object-family",
                    "secret-family",
                    "functions-family",
                    "ai-service-vision-family",
                ],
                verb,
            )
        }
        _ => return None,
    };
    Some(
        levels[..=verb]
            .iter()
            .flat_map(|l| l.iter().copied())
            .collect(),
    )
}

fn family(members: &[&str], verb: usize) -> Option<Vec<&'static str>> {
    let mut out = Vec::new();
    for member in members {
        out.extend(permissions(member, verb)?);
    }
    Some(out)
}

/// The forms this parser understands, for error messages.
const FORMS: &str = "Allow dynamic-group|group|service NAME[, NAME] to inspect|read|use|manage \
                     RESOURCE-TYPE in compartment id OCID|tenancy [where VAR = 'value' | \
                     VAR != 'value' | any {…} | all {…}]";

fn parse_statement(text: &str) -> Result<Statement> {
    let fail = |why: String| {
        Error::Config(format!(
            "policy statement {text:?}: {why} (the emulator understands: {FORMS})"
        ))
    };
    let tokens = tokenize(text).map_err(&fail)?;
    let mut at = Cursor {
        tokens: &tokens,
        i: 0,
    };
    if !at.word("allow") {
        return Err(fail("must start with Allow".into()));
    }
    let kind = at.next_word().ok_or_else(|| fail("no subject".into()))?;
    let mut names = Vec::new();
    loop {
        let name = at
            .next_word()
            .ok_or_else(|| fail("the subject needs a name".into()))?;
        names.push(name);
        if !at.punct(',') {
            break;
        }
    }
    let subject = match kind.to_ascii_lowercase().as_str() {
        "group" => Subject::Groups(names),
        "dynamic-group" => Subject::DynamicGroups(names),
        "service" => Subject::Services(names),
        other => return Err(fail(format!("unsupported subject {other:?}"))),
    };
    if !at.word("to") {
        return Err(fail("expected `to` after the subject".into()));
    }
    let verb = at.next_word().ok_or_else(|| fail("no verb".into()))?;
    let verb = ["inspect", "read", "use", "manage"]
        .iter()
        .position(|v| v.eq_ignore_ascii_case(&verb))
        .ok_or_else(|| fail(format!("unsupported verb {verb:?}")))?;
    let resource_type = at
        .next_word()
        .ok_or_else(|| fail("no resource type".into()))?
        .to_ascii_lowercase();
    let permissions = permissions(&resource_type, verb)
        .ok_or_else(|| fail(format!("unknown resource type {resource_type:?}")))?;
    if !at.word("in") {
        return Err(fail("expected `in` and a location".into()));
    }
    let location = if at.word("tenancy") {
        Location::Tenancy
    } else if at.word("compartment") {
        if !at.word("id") {
            return Err(fail(
                "name the compartment by id (`compartment id ocid1…`)".into(),
            ));
        }
        Location::Compartment(
            at.next_word()
                .ok_or_else(|| fail("no compartment OCID".into()))?,
        )
    } else {
        return Err(fail(
            "the location must be `tenancy` or `compartment id OCID`".into(),
        ));
    };
    let condition = if at.word("where") {
        Some(parse_condition(&mut at).map_err(&fail)?)
    } else {
        None
    };
    if at.i != tokens.len() {
        return Err(fail(format!("unexpected {:?}", tokens[at.i])));
    }
    Ok(Statement {
        text: text.to_string(),
        subject,
        permissions,
        location,
        condition,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
    NotEqual,
}

fn tokenize(text: &str) -> std::result::Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '{' | '}' | ',' | '=' => {
                tokens.push(Token::Punct(c));
                chars.next();
            }
            '!' => {
                chars.next();
                if chars.next() != Some('=') {
                    return Err("`!` must be followed by `=`".into());
                }
                tokens.push(Token::NotEqual);
            }
            '\'' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => value.push(c),
                        None => return Err("unclosed quote".into()),
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            '/' | '"' | '(' | ')' => return Err(format!("unsupported character {c:?}")),
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "{},='!/\"()".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Cursor<'a> {
    tokens: &'a [Token],
    i: usize,
}

impl Cursor<'_> {
    fn word(&mut self, expected: &str) -> bool {
        match self.tokens.get(self.i) {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(expected) => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }

    fn next_word(&mut self) -> Option<String> {
        match self.tokens.get(self.i) {
            Some(Token::Word(w)) => {
                self.i += 1;
                Some(w.clone())
            }
            _ => None,
        }
    }

    fn punct(&mut self, expected: char) -> bool {
        if self.tokens.get(self.i) == Some(&Token::Punct(expected)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
}

fn parse_condition(at: &mut Cursor<'_>) -> std::result::Result<Condition, String> {
    for (keyword, make) in [
        ("any", Condition::Any as fn(Vec<Condition>) -> Condition),
        ("all", Condition::All),
    ] {
        if matches!(at.tokens.get(at.i + 1), Some(Token::Punct('{'))) && at.word(keyword) {
            at.punct('{');
            let mut list = vec![parse_condition(at)?];
            while at.punct(',') {
                list.push(parse_condition(at)?);
            }
            if !at.punct('}') {
                return Err(format!("`{keyword} {{` without its `}}`"));
            }
            return Ok(make(list));
        }
    }
    let variable = at
        .next_word()
        .ok_or("a condition needs a variable, `any {` or `all {`")?
        .to_ascii_lowercase();
    let negated = match at.tokens.get(at.i) {
        Some(Token::Punct('=')) => false,
        Some(Token::NotEqual) => true,
        other => {
            return Err(format!(
                "expected = or != after {variable}, found {other:?}"
            ))
        }
    };
    at.i += 1;
    match at.tokens.get(at.i) {
        Some(Token::Quoted(value)) => {
            at.i += 1;
            Ok(Condition::Clause {
                variable,
                negated,
                value: value.clone(),
            })
        }
        other => Err(format!(
            "{variable}: the value must be 'quoted', found {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> PolicyNames {
        PolicyNames {
            function_dg: "fn-dg".into(),
            webapp_dg: "web-dg".into(),
            compartment_id: "ocid1.compartment.oc1..c".into(),
            bucket: "images".into(),
            db_secret_id: "ocid1.vaultsecret.oc1..db".into(),
            app_secret_ids: vec![
                "ocid1.vaultsecret.oc1..db".into(),
                "ocid1.vaultsecret.oc1..app".into(),
            ],
            app_vision_access: true,
        }
    }

    fn policy() -> Policy {
        let names = names();
        Policy::parse(
            &fill_template(POLICY_TEMPLATE, &names).unwrap(),
            names.dynamic_groups(),
        )
        .unwrap()
    }

    fn resource(resource_type: &str) -> Principal {
        Principal::Resource {
            resource_type: resource_type.into(),
            id: format!("ocid1.{resource_type}.oc1..x"),
            compartment_id: "ocid1.compartment.oc1..c".into(),
        }
    }

    fn access<'a>(
        permissions: &'a [&'static str],
        variables: &[(&'static str, &str)],
    ) -> Access<'a> {
        Access {
            permissions,
            compartment_id: "ocid1.compartment.oc1..c",
            variables: variables.iter().map(|(n, v)| (*n, v.to_string())).collect(),
        }
    }

    #[test]
    fn the_template_fills_as_terraform_does() {
        let filled = fill_template(POLICY_TEMPLATE, &names()).unwrap();
        assert_eq!(filled.len(), 12, "{filled:#?}");
        assert_eq!(
            filled[0],
            "Allow dynamic-group fn-dg to read objects in compartment id ocid1.compartment.oc1..c where target.bucket.name = 'images'"
        );
        assert!(filled.iter().any(|s| s.ends_with(
            "where any {target.secret.id = 'ocid1.vaultsecret.oc1..db', target.secret.id = 'ocid1.vaultsecret.oc1..app'}"
        )));
        let without = PolicyNames {
            app_vision_access: false,
            ..names()
        };
        let filled = fill_template(POLICY_TEMPLATE, &without).unwrap();
        assert_eq!(filled.len(), 11);
        assert!(!filled
            .iter()
            .any(|s| s.contains("web-dg to use ai-service")));
        for bad in [
            "x ${nope}",
            "%{ if other ~}\nx\n%{ endif ~}",
            "%{ if app_vision_access ~}\nx",
        ] {
            assert!(fill_template(bad, &names()).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_dynamic_group_gets_what_its_statements_say() {
        let p = policy();
        let (web, func) = (resource(CONTAINER_INSTANCE), resource(FUNCTION));
        let images = [("target.bucket.name", "images")];
        let other = [("target.bucket.name", "other")];
        for perm in [
            "OBJECT_CREATE",
            "OBJECT_READ",
            "OBJECT_DELETE",
            "OBJECT_INSPECT",
        ] {
            assert!(p.allows(&web, &access(&[perm], &images)), "{perm}");
            assert!(
                !p.allows(&web, &access(&[perm], &other)),
                "{perm} elsewhere"
            );
        }
        assert!(p.allows(&func, &access(&["OBJECT_READ"], &images)));
        assert!(p.allows(&func, &access(&["OBJECT_INSPECT", "OBJECT_READ"], &images)));
        for perm in ["OBJECT_CREATE", "OBJECT_DELETE", "OBJECT_OVERWRITE"] {
            assert!(!p.allows(&func, &access(&[perm], &images)), "{perm}");
        }
        // Bucket-name matching ignores case, as OCI's does.
        assert!(p.allows(
            &func,
            &access(&["OBJECT_READ"], &[("target.bucket.name", "IMAGES")])
        ));
        // No variable, no grant: the condition names a bucket the request does not have.
        assert!(!p.allows(&func, &access(&["OBJECT_READ"], &[])));
        assert!(p.allows(&web, &access(&["BUCKET_READ"], &images)));
        assert!(!p.allows(&func, &access(&["BUCKET_READ"], &images)));
        assert!(p.allows(&web, &access(&["FN_INVOCATION"], &[])));
        assert!(!p.allows(&func, &access(&["FN_INVOCATION"], &[])));
        let db = [("target.secret.id", "ocid1.vaultsecret.oc1..db")];
        let app = [("target.secret.id", "ocid1.vaultsecret.oc1..app")];
        assert!(p.allows(&func, &access(&["SECRET_BUNDLE_READ"], &db)));
        assert!(!p.allows(&func, &access(&["SECRET_BUNDLE_READ"], &app)));
        assert!(p.allows(&web, &access(&["SECRET_BUNDLE_READ"], &app)));
        let vision = ["AI_SERVICE_VISION_ANALYZE_IMAGE"];
        assert!(p.allows(&func, &access(&vision, &[])));
        assert!(p.allows(&web, &access(&vision, &[])));
        let events = Principal::Service("cloudEvents".into());
        assert!(p.allows(&events, &access(&["FN_INVOCATION"], &[])));
        assert!(!p.allows(&events, &access(&["OBJECT_READ"], &images)));
        // Another compartment is not covered; another resource type is in no group.
        let elsewhere = Access {
            compartment_id: "ocid1.compartment.oc1..other",
            ..access(&["OBJECT_READ"], &images)
        };
        assert!(!p.allows(&func, &elsewhere));
        assert!(!p.allows(&resource("instance"), &access(&["OBJECT_READ"], &images)));
        let nobody = Principal::User {
            id: "u".into(),
            groups: vec![],
        };
        assert!(!p.allows(&nobody, &access(&["OBJECT_INSPECT"], &images)));
        assert!(p.allows(&Principal::administrator("u"), &elsewhere));
    }

    #[test]
    fn conditions_nest_and_negate() {
        let p = Policy::parse(
            &[
                "Allow group G to manage objects in tenancy where all {target.bucket.name = 'b', \
               any {request.permission = 'OBJECT_CREATE', request.permission = 'OBJECT_INSPECT'}, \
               target.bucket.name != 'x'}"
                    .to_string(),
            ],
            vec![],
        )
        .unwrap();
        let user = Principal::User {
            id: "u".into(),
            groups: vec!["g".into()],
        };
        let b = [("target.bucket.name", "b")];
        assert!(p.allows(&user, &access(&["OBJECT_CREATE"], &b)));
        assert!(p.allows(&user, &access(&["OBJECT_INSPECT"], &b)));
        assert!(!p.allows(&user, &access(&["OBJECT_READ"], &b)));
        assert!(!p.allows(&user, &access(&["OBJECT_CREATE"], &[])));
    }

    #[test]
    fn unsupported_forms_are_refused_with_the_statement_named() {
        for bad in [
            "Allow any-user to read objects in tenancy",
            "Allow group G to {OBJECT_READ} in tenancy",
            "Allow group G to read objects in compartment imgpipe",
            "Allow group G to peek objects in tenancy",
            "Allow group G to read gizmos in tenancy",
            "Allow group G to read objects in tenancy where target.bucket.name = /img*/",
            "Allow group G to read objects in tenancy where any {target.bucket.name = 'a'",
            "Deny group G to read objects in tenancy",
            "Allow group G to read objects in tenancy extra",
        ] {
            let error = Policy::parse(&[bad.to_string()], vec![])
                .unwrap_err()
                .to_string();
            assert!(error.contains(bad), "{error}");
            assert!(error.contains("the emulator understands"), "{error}");
        }
    }
}
