//! Small validated values typed into forms: names, codes, colours, links, time zones.

/// Required free text, trimmed, with a maximum length.
pub fn required_text(raw: &str, max_chars: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("is required".into());
    }
    optional_text(text, max_chars)
}

/// Optional free text, trimmed, with a maximum length.
pub fn optional_text(raw: &str, max_chars: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > max_chars {
        return Err(format!("is too long (at most {max_chars} characters)"));
    }
    Ok(text.to_string())
}

/// Optional text on one line: names that end up in email headers or page titles may
/// not carry line breaks or other control characters.
pub fn single_line(raw: &str, max_chars: usize) -> Result<String, String> {
    let text = optional_text(raw, max_chars)?;
    if text.chars().any(char::is_control) {
        return Err("must be on one line, without tabs or other control characters".into());
    }
    Ok(text)
}

/// Required text on one line (see `single_line`).
pub fn required_single_line(raw: &str, max_chars: usize) -> Result<String, String> {
    required_text(raw, max_chars)?;
    single_line(raw, max_chars)
}

/// An organisation's short name, such as `ACMEx`.
pub fn organisation_short_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("is required".into());
    }
    if name.len() > 64 {
        return Err("is too long (at most 64 characters)".into());
    }
    let valid = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(
            "may contain only letters, digits, '.', '_' and '-', starting with a letter or digit"
                .into(),
        );
    }
    Ok(name.to_string())
}

/// A lower-case slug such as a partner code: letters, digits and dashes.
pub fn code(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_lowercase();
    if code.is_empty() {
        return Err("is required".into());
    }
    if code.len() > 64 {
        return Err("is too long (at most 64 characters)".into());
    }
    let valid = code.starts_with(|c: char| c.is_ascii_alphanumeric())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err("may contain only lower-case letters, digits and '-'".into());
    }
    Ok(code)
}

/// Turns any text into a slug fragment: `ACME Corp — Sales 2026` → `acme-corp-sales-2026`.
pub fn slugify(raw: &str) -> String {
    let mut slug = String::new();
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let trimmed = slug.trim_end_matches('-');
    let mut out: String = trimmed.chars().take(80).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// A colour like `#1f6feb`.
pub fn accent_colour(raw: &str) -> Result<String, String> {
    let colour = raw.trim().to_lowercase();
    let valid = colour.len() == 7
        && colour.starts_with('#')
        && colour[1..].chars().all(|c| c.is_ascii_hexdigit());
    if valid {
        Ok(colour)
    } else {
        Err("must be a colour like #1f6feb".into())
    }
}

/// An optional absolute http(s) link.
pub fn optional_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    if url.is_empty() {
        return Ok(String::new());
    }
    if url.len() > 2000 {
        return Err("is too long (at most 2000 characters)".into());
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !url.chars().any(char::is_whitespace) => {
            Ok(url.to_string())
        }
        _ => Err("must be a link starting with https:// or http://".into()),
    }
}

/// An optional email address, normalised.
pub fn optional_email(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Ok(String::new());
    }
    super::EmailAddress::parse(raw)
        .map(|e| e.into_string())
        .map_err(|e| e.to_string())
}

/// An IANA time zone name such as `Europe/Paris`.
pub fn time_zone(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok("UTC".into());
    }
    name.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_string())
        .map_err(|_| format!("{name:?} is not a time zone name such as Europe/Paris or UTC"))
}

/// A whole number of at least zero, such as a limit (0 = unlimited).
pub fn non_negative(raw: &str) -> Result<i32, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(0);
    }
    match text.parse::<i64>() {
        Ok(n) if n < 0 => Err("must be 0 or more".into()),
        Ok(n) if n > i64::from(i32::MAX) => Err(format!("must be at most {}", i32::MAX)),
        Ok(n) => Ok(n as i32),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("ACME Corp — Sales 2026!"), "acme-corp-sales-2026");
        assert_eq!(slugify("  --Hello--  "), "hello");
        assert_eq!(slugify("Émile"), "mile");
    }

    #[test]
    fn codes_and_names() {
        assert_eq!(code(" Acme-Corp ").unwrap(), "acme-corp");
        assert!(code("acme corp").is_err());
        assert!(code("").is_err());
        assert_eq!(organisation_short_name("ACMEx").unwrap(), "ACMEx");
        assert!(organisation_short_name("AC ME").is_err());
    }

    #[test]
    fn colours_links_zones_numbers() {
        assert_eq!(accent_colour("#ABCDEF").unwrap(), "#abcdef");
        assert!(accent_colour("red").is_err());
        assert!(optional_url("javascript:alert(1)").is_err());
        assert_eq!(optional_url("").unwrap(), "");
        assert!(optional_url("https://acme.example").is_ok());
        assert_eq!(time_zone("Europe/Paris").unwrap(), "Europe/Paris");
        assert!(time_zone("Mars/Olympus").is_err());
        assert_eq!(non_negative("").unwrap(), 0);
        assert_eq!(non_negative(" 25 ").unwrap(), 25);
        assert!(non_negative("-1").is_err());
        assert!(non_negative("ten").is_err());
    }
}
