//! The one-line text of an alert, and the escaping that keeps it one line.
//!
//! Arguments are attacker-controlled: a newline or escape sequence in one
//! must never reach a log line raw, where it could forge a second entry or
//! repaint a terminal. Everything here is pure text handling.

use serde_json::Value;

/// Escapes one argument so that it prints on one line, quoting it if needed.
///
/// `\n`, `\r`, `\t` and `\\` get their usual escapes; other control
/// characters (C0, DEL and C1) become `\xNN`; Unicode line separators and
/// bidirectional-text controls, which can reorder or break what a terminal
/// shows, become `\u{NNNN}`. Other non-ASCII text is kept. The result is
/// wrapped in double quotes, with `"` escaped, when the argument is empty or
/// has whitespace, quotes or anything escaped.
pub fn escape_arg(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len() + 2);
    let escaped = escape_into(&mut out, arg);
    let bare =
        !arg.is_empty() && !escaped && !arg.contains(|c: char| c.is_whitespace() || c == '\'');
    if bare { out } else { format!("\"{out}\"") }
}

/// Appends `text` to `out` with the escapes of [`escape_arg`], without
/// quoting; returns whether anything was escaped.
fn escape_into(out: &mut String, text: &str) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if is_invisible_format(c) => {
                out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
            }
            c => {
                out.push(c);
                continue;
            }
        }
        escaped = true;
    }
    escaped
}

/// Characters that show nothing, or reorder or break what a terminal shows:
/// line and paragraph separators, bidirectional controls, zero-width
/// characters and other invisible format characters.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
    )
}

/// The arguments of `process.args`, escaped with [`escape_arg`] and joined by spaces.
///
/// Falls back to `process.executable`, then `process.name`, when the event
/// has no argument array; `?` when it has none of them.
pub fn command_line(event: &Value) -> String {
    let args = match lookup(event, "process.args") {
        Some(Value::Array(args)) => args.iter().collect(),
        _ => ["process.executable", "process.name"]
            .iter()
            .find_map(|path| lookup(event, path))
            .into_iter()
            .collect::<Vec<_>>(),
    };
    if args.is_empty() {
        return "?".into();
    }
    let words: Vec<String> = args
        .into_iter()
        .map(|arg| escape_arg(&text_of(arg)))
        .collect();
    words.join(" ")
}

pub(super) fn format_message(rule_name: &str, event: &Value) -> String {
    let pid = lookup(event, "process.pid").map_or_else(|| "?".into(), text_of);
    let user = lookup(event, "user.name")
        .or_else(|| lookup(event, "user.id"))
        .map_or_else(|| "?".into(), text_of);
    let mut line = format!(
        "{}: pid={} user={}",
        escape_line(rule_name),
        escape_arg(&pid),
        escape_arg(&user)
    );
    if let Some(ppid) = lookup(event, "process.parent.pid") {
        let name = lookup(event, "process.parent.name").map_or_else(|| "?".into(), text_of);
        line.push_str(&format!(
            " parent={}[{}]",
            escape_arg(&name),
            escape_arg(&text_of(ppid))
        ));
    }
    if let Some(id) = lookup(event, "container.id") {
        // The short form `docker ps` shows.
        let id = text_of(id);
        let short: String = id.chars().take(12).collect();
        line.push_str(&format!(" container={}", escape_arg(&short)));
    }
    line.push_str(" cmd=");
    line.push_str(&command_line(event));
    line
}

/// Escapes like [`escape_arg`] but never quotes, for text that is not an argument.
fn escape_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// A value as plain text: strings without JSON quotes, anything else as JSON.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A nested field by dotted path; ECS documents nest every dotted name.
pub(super) fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |value, key| value.get(key))
}
