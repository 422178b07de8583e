//! Writing scores: JSON lines (the spec's objects) and CSV.

use std::io::{self, Write};

use leadscore_core::{Model, ScoreCard};

/// How scores are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON object per line, as the spec shows.
    Json,
    /// A header line, then one row per contact.
    Csv,
}

fn number(out: &mut Vec<u8>, x: f64) {
    // Shortest text that reads back as the same f64 ("15.0", "0.1").
    let mut b = ryu::Buffer::new();
    out.extend_from_slice(b.format(x).as_bytes());
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    // serde_json escapes exactly as JSON requires.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends one contact's JSON line:
/// `{"id": "c1", "dimensions": {"fit": 30.0}, "score": 21.25, "band": "cold", "stage": null, "disqualified": false}`.
pub fn json_line(out: &mut Vec<u8>, model: &Model, id: &str, card: &ScoreCard) {
    out.extend_from_slice(b"{\"id\": ");
    json_string(out, id);
    out.extend_from_slice(b", \"dimensions\": {");
    for (i, (d, v)) in model.dimensions.iter().zip(&card.dimensions).enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        json_string(out, &d.id);
        out.extend_from_slice(b": ");
        number(out, *v);
    }
    out.extend_from_slice(b"}, \"score\": ");
    number(out, card.score);
    out.extend_from_slice(b", \"band\": ");
    match card.band_name(model) {
        Some(b) => json_string(out, b),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b", \"stage\": ");
    match card.stage_name(model) {
        Some(s) => json_string(out, s),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(if card.disqualified {
        b", \"disqualified\": true}\n"
    } else {
        b", \"disqualified\": false}\n"
    });
}

fn csv_field(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// The CSV header: `id,<dimension ids>,score,band,stage,disqualified`.
pub fn csv_header(out: &mut Vec<u8>, model: &Model) {
    out.extend_from_slice(b"id");
    for d in &model.dimensions {
        out.push(b',');
        csv_field(out, &d.id);
    }
    out.extend_from_slice(b",score,band,stage,disqualified\n");
}

/// Appends one contact's CSV row (empty band or stage when there is none).
pub fn csv_row(out: &mut Vec<u8>, model: &Model, id: &str, card: &ScoreCard) {
    csv_field(out, id);
    for v in &card.dimensions {
        out.push(b',');
        number(out, *v);
    }
    out.push(b',');
    number(out, card.score);
    out.push(b',');
    csv_field(out, card.band_name(model).unwrap_or(""));
    out.push(b',');
    csv_field(out, card.stage_name(model).unwrap_or(""));
    out.extend_from_slice(if card.disqualified {
        b",true\n"
    } else {
        b",false\n"
    });
}

/// A whole CSV file (header and one row per contact) of `(id, card)`s, in
/// the order given: what `leadscore score --format csv` prints.
pub fn csv_file<'a>(
    model: &Model,
    rows: impl IntoIterator<Item = (&'a str, &'a ScoreCard)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    csv_header(&mut out, model);
    for (id, card) in rows {
        csv_row(&mut out, model, id, card);
    }
    out
}

/// Whether every number of a card is finite.
pub fn finite(card: &ScoreCard) -> bool {
    card.score.is_finite() && card.dimensions.iter().all(|d| d.is_finite())
}

/// Writes the cards of `order` (indices into `ids`/`cards`) in that order,
/// formatting blocks in parallel.
pub fn write_scores<'a, W: Write + ?Sized>(
    w: &mut W,
    model: &Model,
    format: OutputFormat,
    ids: &(dyn Fn(usize) -> &'a str + Sync),
    cards: &[ScoreCard],
    order: &[usize],
) -> io::Result<()> {
    use rayon::prelude::*;
    // A number that is not finite is not JSON nor a score: refused, never
    // printed. (Validation bounds every model number so that it cannot
    // happen; this is the last guard.)
    if let Some(&i) = order.iter().find(|&&i| !finite(&cards[i])) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("contact {}: its score is not a finite number", ids(i)),
        ));
    }
    if format == OutputFormat::Csv {
        let mut head = Vec::new();
        csv_header(&mut head, model);
        w.write_all(&head)?;
    }
    for block in order.chunks(64 * 1024) {
        let parts: Vec<Vec<u8>> = block
            .par_chunks(4096)
            .map(|part| {
                let mut out = Vec::with_capacity(part.len() * 160);
                for &i in part {
                    let id = ids(i);
                    match format {
                        OutputFormat::Json => json_line(&mut out, model, id, &cards[i]),
                        OutputFormat::Csv => csv_row(&mut out, model, id, &cards[i]),
                    }
                }
                out
            })
            .collect();
        for p in parts {
            w.write_all(&p)?;
        }
    }
    Ok(())
}

/// Positions of `cards` ordered by score, highest first; ties keep input
/// order. With `top`, only the first `top`.
pub fn by_score(cards: &[ScoreCard], top: Option<usize>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cards.len()).collect();
    order.sort_by(|&a, &b| cards[b].score.total_cmp(&cards[a].score).then(a.cmp(&b)));
    if let Some(n) = top {
        order.truncate(n);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_that_is_not_finite_is_refused_not_printed() {
        let model = Model::from_toml("[[dimension]]\nid = \"fit\"\n").unwrap();
        let card = |score: f64| ScoreCard {
            dimensions: vec![score],
            score,
            band: None,
            stage: None,
            disqualified: false,
        };
        let cards = [card(50.0), card(f64::NAN)];
        let ids = |i: usize| ["ok", "bad"][i];
        for format in [OutputFormat::Json, OutputFormat::Csv] {
            let mut out = Vec::new();
            let err = write_scores(&mut out, &model, format, &ids, &cards, &[0, 1]).unwrap_err();
            assert!(err.to_string().contains("contact bad"), "{err}");
            assert!(out.is_empty(), "nothing printed");
            write_scores(&mut out, &model, format, &ids, &cards, &[0]).unwrap();
            assert!(!out.is_empty());
        }
    }
}
