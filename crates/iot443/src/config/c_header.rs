//! The Embedded C SDK's `aws_iot_config.h`, read directly so its users keep their configuration.
//!
//! Only `#define NAME value` lines are read, where the value is a string literal (adjacent
//! literals are joined), an integer, or the name of another such define. Comments of both kinds,
//! `///<` doc comments, line continuations and the SDK's many other defines are tolerated.

use super::{Config, ConfigError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const HOST: &str = "AWS_IOT_MQTT_HOST";
const PORT: &str = "AWS_IOT_MQTT_PORT";
const CLIENT_ID: &str = "AWS_IOT_MQTT_CLIENT_ID";
const THING_NAME: &str = "AWS_IOT_MY_THING_NAME";
const ROOT_CA: &str = "AWS_IOT_ROOT_CA_FILENAME";
const CERTIFICATE: &str = "AWS_IOT_CERTIFICATE_FILENAME";
const PRIVATE_KEY: &str = "AWS_IOT_PRIVATE_KEY_FILENAME";

impl Config {
    /// Reads the connection settings of a C SDK `aws_iot_config.h`: `AWS_IOT_MQTT_HOST`,
    /// `AWS_IOT_MQTT_PORT`, `AWS_IOT_MQTT_CLIENT_ID`, `AWS_IOT_MY_THING_NAME` (optional),
    /// `AWS_IOT_ROOT_CA_FILENAME` (optional: without it, or when empty, the Mozilla roots are
    /// used), `AWS_IOT_CERTIFICATE_FILENAME` and `AWS_IOT_PRIVATE_KEY_FILENAME`.
    ///
    /// The file names are looked up in `cert_dir` when given (like the sample's `-c` option).
    /// Otherwise in `<header dir>/certs/`, and, when the certificate is not there, in
    /// `<header dir>/../../../certs/`: the SDK's `subscribe_publish_sample` runs from
    /// `samples/linux/subscribe_publish_sample/` with its certificate folder at
    /// `../../../certs` (the SDK's top-level `certs/`).
    pub fn from_c_sdk_header(path: &Path, cert_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source: std::sync::Arc::new(source),
        })?;
        // Comments may be in any encoding (Shift_JIS, Latin-1...); the defines read are ASCII.
        let text = String::from_utf8_lossy(&bytes);
        let header = Header::parse(text.trim_start_matches('\u{feff}'), path);

        let host = header.required_string(HOST)?;
        let port = header.port()?;
        let client_id = header.required_string(CLIENT_ID)?;
        let thing_name = header.string(THING_NAME)?;
        let root_ca = header.string(ROOT_CA)?.filter(|name| !name.is_empty());
        let certificate = header.required_string(CERTIFICATE)?;
        let private_key = header.required_string(PRIVATE_KEY)?;

        let header_dir = path.parent().unwrap_or_else(|| Path::new(""));
        let dir = match cert_dir {
            Some(dir) => dir.to_owned(),
            None => default_cert_dir(header_dir, &certificate),
        };
        tracing::debug!(header = %path.display(), cert_dir = %dir.display(), "C SDK header read");

        let mut builder =
            Config::builder(host, client_id, dir.join(&certificate), dir.join(&private_key))
                .port(port)
                .source(path);
        if let Some(thing_name) = thing_name {
            builder = builder.thing_name(thing_name);
        }
        if let Some(root_ca) = root_ca {
            builder = builder.root_ca(dir.join(root_ca));
        }
        builder.build()
    }
}

/// `<header dir>/certs` unless the certificate is only found in `<header dir>/../../../certs`.
fn default_cert_dir(header_dir: &Path, certificate: &str) -> PathBuf {
    let beside = header_dir.join("certs");
    let sdk_root = match header_dir.ancestors().nth(3) {
        Some(root) => root.join("certs"),
        None => header_dir.join("../../../certs"),
    };
    if beside.join(certificate).is_file() {
        beside
    } else if sdk_root.join(certificate).is_file() || (!beside.is_dir() && sdk_root.is_dir()) {
        sdk_root
    } else {
        beside
    }
}

/// A value a define expands to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Str(String),
    Int(i64),
}

/// The object-like defines of a header: name → (body, line number).
struct Header<'a> {
    path: &'a Path,
    defines: HashMap<String, (String, usize)>,
}

impl<'a> Header<'a> {
    fn parse(text: &str, path: &'a Path) -> Header<'a> {
        // Translation phases as a C compiler runs them: splice continued lines, then comments.
        let spliced = text.replace("\\\r\n", "").replace("\\\n", "");
        let code = strip_comments(&spliced);
        let mut defines = HashMap::new();
        for (index, line) in code.lines().enumerate() {
            if let Some((name, body)) = parse_define(line) {
                if defines.get(name).is_some_and(|(previous, _): &(String, usize)| previous != body)
                {
                    tracing::debug!(name, "redefined in {}; the last one counts", path.display());
                }
                defines.insert(name.to_owned(), (body.to_owned(), index + 1));
            }
        }
        Header { path, defines }
    }

    fn origin(&self, line: usize) -> String {
        format!("{} line {line}", self.path.display())
    }

    fn missing(&self, field: &'static str) -> ConfigError {
        ConfigError::MissingField { origin: self.path.display().to_string(), field }
    }

    /// Expands `name`, following references to other defines.
    fn value(&self, field: &'static str) -> Result<Option<(Value, usize)>, ConfigError> {
        let Some((body, line)) = self.defines.get(field) else { return Ok(None) };
        let mut body = body.as_str();
        for _ in 0..8 {
            match evaluate(body) {
                Ok(Expr::Value(value)) => return Ok(Some((value, *line))),
                Ok(Expr::Name(other)) => match self.defines.get(other) {
                    Some((next, _)) => body = next,
                    None => {
                        return Err(ConfigError::InvalidValue {
                            origin: self.origin(*line),
                            field,
                            message: format!("it refers to `{other}`, which is not defined here"),
                        });
                    }
                },
                Err(message) => {
                    return Err(ConfigError::InvalidValue {
                        origin: self.origin(*line),
                        field,
                        message,
                    });
                }
            }
        }
        Err(ConfigError::InvalidValue {
            origin: self.origin(*line),
            field,
            message: "it refers to other defines too deeply (a loop?)".to_owned(),
        })
    }

    fn string(&self, field: &'static str) -> Result<Option<String>, ConfigError> {
        match self.value(field)? {
            None => Ok(None),
            Some((Value::Str(s), _)) => Ok(Some(s)),
            Some((Value::Int(n), line)) => Err(ConfigError::InvalidValue {
                origin: self.origin(line),
                field,
                message: format!("expected a string literal in double quotes, found {n}"),
            }),
        }
    }

    fn required_string(&self, field: &'static str) -> Result<String, ConfigError> {
        self.string(field)?.ok_or_else(|| self.missing(field))
    }

    fn port(&self) -> Result<u16, ConfigError> {
        let (value, line) = self.value(PORT)?.ok_or_else(|| self.missing(PORT))?;
        let invalid = |message: String| ConfigError::InvalidValue {
            origin: self.origin(line),
            field: PORT,
            message,
        };
        match value {
            Value::Int(n) => u16::try_from(n)
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid(format!("{n} is not a TCP port: use 443 or 8883"))),
            Value::Str(s) => Err(invalid(format!("expected a number such as 443, found {s:?}"))),
        }
    }
}

/// `#define NAME body` → (NAME, body); `None` for other lines and function-like macros.
fn parse_define(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start().strip_prefix("define")?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_start();
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let (name, body) = rest.split_at(end);
    if name.is_empty() || body.starts_with('(') {
        return None;
    }
    Some((name, body.trim()))
}

/// Replaces `//` and `/* */` comments by a space, keeping newlines and string literals.
fn strip_comments(text: &str) -> String {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Literal(char),
        LineComment,
        BlockComment,
    }
    let mut out = String::with_capacity(text.len());
    let mut state = State::Code;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            State::Code => match (c, chars.peek()) {
                ('/', Some('/')) => {
                    chars.next();
                    state = State::LineComment;
                    out.push(' ');
                }
                ('/', Some('*')) => {
                    chars.next();
                    state = State::BlockComment;
                    out.push(' ');
                }
                ('"' | '\'', _) => {
                    state = State::Literal(c);
                    out.push(c);
                }
                _ => out.push(c),
            },
            State::Literal(quote) => {
                out.push(c);
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        out.push(escaped);
                    }
                } else if c == quote || c == '\n' {
                    state = State::Code;
                }
            }
            State::LineComment => {
                if c == '\n' {
                    out.push('\n');
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if c == '\n' {
                    out.push('\n');
                } else if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    state = State::Code;
                }
            }
        }
    }
    out
}

/// What a define's body is.
#[derive(Debug, PartialEq, Eq)]
enum Expr<'a> {
    Value(Value),
    Name(&'a str),
}

/// Evaluates a define body: string literals (joined), an integer, or another define's name,
/// each possibly in parentheses.
fn evaluate(body: &str) -> Result<Expr<'_>, String> {
    let mut body = body.trim();
    while let Some(inner) = body.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
        body = inner.trim();
    }
    if body.is_empty() {
        return Err("the define has no value".to_owned());
    }
    if body.starts_with('"') {
        return string_literals(body).map(|s| Expr::Value(Value::Str(s)));
    }
    if body.starts_with(|c: char| c.is_ascii_digit()) {
        return integer(body).map(|n| Expr::Value(Value::Int(n)));
    }
    if body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(Expr::Name(body));
    }
    Err(format!("cannot read the value `{body}`: expected a string in double quotes or a number"))
}

/// `"abc" "def"` → `abcdef`, with C escapes.
fn string_literals(body: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = body.chars();
    loop {
        match chars.by_ref().find(|c| !c.is_whitespace()) {
            None => return Ok(out),
            Some('"') => {}
            Some(other) => {
                return Err(format!(
                    "unexpected `{other}` after a string literal: expected only \"...\" parts"
                ));
            }
        }
        loop {
            match chars.next() {
                None => return Err("a string literal is not closed (missing `\"`)".to_owned()),
                Some('"') => break,
                Some('\\') => out.push(match chars.next() {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('r') => '\r',
                    Some(c @ ('\\' | '"' | '\'' | '?')) => c,
                    Some(c) => return Err(format!("the escape `\\{c}` is not supported here")),
                    None => return Err("a string literal ends with `\\`".to_owned()),
                }),
                Some(c) => out.push(c),
            }
        }
    }
}

/// `443`, `443U`, `0x1BB`, `0443` (octal), as C reads them.
fn integer(body: &str) -> Result<i64, String> {
    let digits = body.trim_end_matches(['u', 'U', 'l', 'L']);
    let parsed = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16)
    } else if let Some(octal) = digits.strip_prefix('0').filter(|o| !o.is_empty()) {
        i64::from_str_radix(octal, 8)
    } else {
        digits.parse()
    };
    parsed.map_err(|_| format!("`{body}` is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defines_with_comments_and_literals() {
        let text = "/* head\n#define AWS_IOT_MQTT_HOST \"commented\" */\n\
                    #define AWS_IOT_MQTT_HOST  \"a//b\" ///< doc\n\
                    #  define PORT_ALIAS (8883U) // alias\n\
                    #define AWS_IOT_MQTT_PORT PORT_ALIAS\n\
                    #define SHADOW_MAX(x) (x)\n\
                    #define JOINED \"ab\" \\\n  \"cd\"\n";
        let header = Header::parse(text, Path::new("h.h"));
        assert_eq!(header.string(HOST).unwrap().as_deref(), Some("a//b"));
        assert_eq!(header.port().unwrap(), 8883);
        assert_eq!(header.string("JOINED").unwrap().as_deref(), Some("abcd"));
        assert!(!header.defines.contains_key("SHADOW_MAX"));
        assert_eq!(header.defines.get(HOST).map(|d| d.1), Some(3));
    }

    #[test]
    fn integers_as_c_reads_them() {
        assert_eq!(integer("443"), Ok(443));
        assert_eq!(integer("0x1BB"), Ok(443));
        assert_eq!(integer("0673"), Ok(443));
        assert_eq!(integer("443UL"), Ok(443));
        assert!(integer("44three").is_err());
    }
}
