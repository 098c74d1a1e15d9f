//! Encoded characters: the separators of account ids and of their contexts are found raw,
//! percent-encoded any number of times (`%3A`, `%253A`), as HTML character references (`&#58;`,
//! `&#x3a;`, `&colon;`) or as JSON/JS escapes (`\u003a`, `\"`).

/// The (ASCII) character at `b[p..]`, decoded, and how many bytes encode it: the byte itself, or
/// a percent escape (`%3A`, `%253A`...), an HTML character reference (`&#58;`, `&#x3a;`,
/// `&colon;`), or a JSON/JS escape (`\u003a`, `\"`, `\/`).
pub(super) fn decoded_at(b: &[u8], p: usize) -> Option<(u8, usize)> {
    let c = *b.get(p)?;
    let decoded = match c {
        b'%' => percent_at(b, p),
        b'&' => reference_at(b, p),
        b'\\' => escape_at(b, p),
        _ => None,
    };
    Some(decoded.unwrap_or((c, 1)))
}

/// Length of `ch` (ASCII) encoded at `b[p..]` in any of the forms [`decoded_at`] knows.
pub(super) fn encoded_char_at(b: &[u8], p: usize, ch: u8) -> Option<usize> {
    decoded_at(b, p)
        .filter(|&(c, _)| c.eq_ignore_ascii_case(&ch))
        .map(|(_, len)| len)
}

/// `%XX`, `%25XX`, `%2525XX`... (percent-encoded any number of times).
fn percent_at(b: &[u8], p: usize) -> Option<(u8, usize)> {
    let mut i = p + 1;
    loop {
        let hi = hex_value(*b.get(i)?)?;
        let lo = hex_value(*b.get(i + 1)?)?;
        let c = hi * 16 + lo;
        i += 2;
        if c == b'%'
            && b.get(i..i + 2)
                .is_some_and(|w| w.iter().all(u8::is_ascii_hexdigit))
        {
            continue;
        }
        return c.is_ascii().then_some((c, i - p));
    }
}

/// `&#58;`, `&#x3A;`, `&colon;` and the few named references that matter here.
fn reference_at(b: &[u8], p: usize) -> Option<(u8, usize)> {
    let semi = b
        .get(p + 1..b.len().min(p + 12))?
        .iter()
        .position(|&c| c == b';')?
        + p
        + 1;
    let body = b.get(p + 1..semi)?;
    let value = if let Some(num) = body.strip_prefix(b"#") {
        let (digits, radix) = match num.first() {
            Some(b'x' | b'X') => (num.get(1..)?, 16),
            _ => (num, 10),
        };
        if digits.is_empty() {
            return None;
        }
        let mut v: u32 = 0;
        for &d in digits {
            v = v
                .checked_mul(radix)?
                .checked_add(char::from(d).to_digit(radix)?)?;
        }
        u8::try_from(v).ok().filter(u8::is_ascii)?
    } else {
        let name = std::str::from_utf8(body).ok()?;
        match name.to_ascii_lowercase().as_str() {
            "colon" => b':',
            "tilde" => b'~',
            "equals" => b'=',
            "quot" => b'"',
            "apos" => b'\'',
            "sol" => b'/',
            "commat" => b'@',
            "comma" => b',',
            "lsqb" | "lbrack" => b'[',
            "amp" => b'&',
            "nbsp" => b' ',
            _ => return None,
        }
    };
    Some((value, semi + 1 - p))
}

/// `\u003a`, `\"`, `\/`, `\\`.
fn escape_at(b: &[u8], p: usize) -> Option<(u8, usize)> {
    match *b.get(p + 1)? {
        b'u' | b'U' => {
            let hex = b.get(p + 2..p + 6)?;
            let mut v: u32 = 0;
            for &d in hex {
                v = v * 16 + u32::from(hex_value(d)?);
            }
            u8::try_from(v).ok().filter(u8::is_ascii).map(|c| (c, 6))
        }
        c @ (b'"' | b'/' | b'\\' | b'\'') => Some((c, 2)),
        _ => None,
    }
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}
