//! The files a card links to inside its repository: images and links with a relative target
//! (`![loss](cardfill-training.png)`, `<img src="plots/loss.svg">`), which `cardfill push`
//! uploads with the card.

/// The relative targets of the card's Markdown links and images and of HTML `src`/`href`
/// attributes, in order, without duplicates: no URL scheme, no absolute path, no `..`, no
/// fragment-only link; `#fragment` and `?query` removed, `%XX` decoded.
pub fn linked_files(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |raw: &str| {
        if let Some(target) = clean(raw)
            && !out.contains(&target)
        {
            out.push(target);
        }
    };
    // Markdown: `](target)` or `](<target> "title")`.
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let inner = match rest.strip_prefix('<') {
            Some(r) => r.split('>').next().unwrap_or(""),
            None => rest
                .split(|c: char| c == ')' || c.is_whitespace())
                .next()
                .unwrap_or(""),
        };
        push(inner);
    }
    // HTML attributes.
    for attr in ["src=", "href="] {
        let mut rest = text;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let value = rest[1..].split(quote).next().unwrap_or("");
            push(value);
        }
    }
    out
}

fn clean(raw: &str) -> Option<String> {
    let target = raw.trim();
    let target = target.split(['#', '?']).next().unwrap_or("");
    let scheme = target.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    });
    if target.is_empty() || scheme || target.starts_with('/') || target.starts_with('\\') {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(target)
        .decode_utf8()
        .ok()?
        .into_owned();
    let decoded = decoded.strip_prefix("./").unwrap_or(&decoded).to_owned();
    if decoded.is_empty()
        || decoded
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return None;
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_only() {
        let card = "![loss](cardfill-training.png)\n[paper](https://arxiv.org/abs/1)\n\
            [top](#training)\n<img src=\"plots/lr%20curve.svg\" width=400>\n\
            [up](../secret)\n[abs](/etc/passwd)\n[again](./cardfill-training.png \"t\")\n\
            [mail](mailto:a@b.c)\n<a href='LICENSE'>licence</a>\n[q](notes.md?x=1#y)";
        assert_eq!(
            linked_files(card),
            [
                "cardfill-training.png",
                "notes.md",
                "plots/lr curve.svg",
                "LICENSE"
            ]
        );
    }
}
