//! The "Perhaps you meant …" hints: PostgREST picks them with a fuzzy string set (the
//! `fuzzyset` package, after fuzzyset.js), and its scores decide whether a hint is shown at
//! all, so the same algorithm is used here. Candidates sharing an n-gram with the query
//! (trigrams, else bigrams) are ranked by cosine similarity, the best 50 rescored by
//! normalised Levenshtein similarity, and the best at or above the minimum score wins.

use std::collections::HashMap;

/// At most this many candidates, best by n-grams, are rescored by edit distance.
const RESCORED: usize = 50;

/// The candidate most like `query` with a score of at least `min_score` (PostgREST: 0.75 for
/// table and function names, 0.33 for parameter lists); an exact match (ignoring case)
/// first. Errors only: candidates are the schema's names, scanned once per failed request.
pub fn closest<'a>(
    candidates: impl IntoIterator<Item = &'a str>,
    query: &str,
    min_score: f64,
) -> Option<&'a str> {
    let candidates: Vec<&str> = candidates.into_iter().collect();
    let query_lower = query.to_lowercase();
    if let Some(exact) = candidates.iter().find(|c| c.to_lowercase() == query_lower) {
        return Some(exact);
    }
    [3, 2].into_iter().find_map(|size| {
        let wanted = grams(query, size);
        let mut ranked: Vec<(f64, &str)> = candidates
            .iter()
            .filter_map(|c| cosine(&wanted, &grams(c, size)).map(|score| (score, *c)))
            .collect();
        sort_best_first(&mut ranked);
        ranked.truncate(RESCORED);
        let mut rescored: Vec<(f64, &str)> = ranked
            .into_iter()
            .map(|(_, c)| (edit_similarity(&query_lower, &c.to_lowercase()), c))
            .collect();
        sort_best_first(&mut rescored);
        rescored
            .first()
            .filter(|(score, _)| *score >= min_score)
            .map(|(_, c)| *c)
    })
}

/// `(a, b, c)`: a parameter list as PostgREST compares them, names sorted.
pub fn param_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    format!("({})", names.join(", "))
}

/// Stable, so that equal scores keep the candidates' order.
fn sort_best_first(scored: &mut [(f64, &str)]) {
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
}

/// The n-grams of `s` lowercased, kept to letters, digits, spaces and commas, between
/// hyphens: `"Ab."` gives `-ab-`, whose bigrams are `-a`, `ab`, `b-`.
fn grams(s: &str, size: usize) -> HashMap<String, u32> {
    let padded: Vec<char> = std::iter::once('-')
        .chain(
            s.chars()
                .flat_map(char::to_lowercase)
                .filter(|c| c.is_alphanumeric() || c.is_whitespace() || *c == ','),
        )
        .chain(std::iter::once('-'))
        .collect();
    let mut counts = HashMap::new();
    for gram in padded.windows(size) {
        *counts.entry(gram.iter().collect()).or_insert(0) += 1;
    }
    counts
}

/// Cosine similarity of two gram vectors; None when they share no gram.
fn cosine(a: &HashMap<String, u32>, b: &HashMap<String, u32>) -> Option<f64> {
    let dot: u32 = a.iter().filter_map(|(g, n)| b.get(g).map(|m| n * m)).sum();
    let magnitude =
        |v: &HashMap<String, u32>| f64::from(v.values().map(|n| n * n).sum::<u32>()).sqrt();
    (dot > 0).then(|| f64::from(dot) / (magnitude(a) * magnitude(b)))
}

/// 1 − Levenshtein distance / the longer length, over characters.
fn edit_similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    1.0 - row[b.len()] as f64 / longest as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgREST's own examples (Error.hs, noRpcHint's doctests).
    #[test]
    fn parameter_lists_as_postgrest_matches_them() {
        let overloads = [
            param_list(["val", "param", "name"]),
            param_list(["id", "attr"]),
        ];
        let hint = |given: &[&str]| {
            closest(
                overloads.iter().map(String::as_str),
                &param_list(given.iter().copied()),
                0.33,
            )
        };
        assert_eq!(hint(&["vall", "pqaram", "nam"]), Some("(name, param, val)"));
        assert_eq!(hint(&["val", "param"]), Some("(name, param, val)"));
        assert_eq!(hint(&["id", "attrs"]), Some("(attr, id)"));
        assert_eq!(hint(&["id"]), Some("(attr, id)"));
        assert_eq!(hint(&["noclosealternative"]), None);
        // corpus 1439: one json parameter named `data`, called with A, B, C.
        assert_eq!(
            closest(["(data)"], &param_list(["A", "B", "C"]), 0.33),
            None
        );
    }

    #[test]
    fn names_need_three_quarters() {
        let functions = ["test", "another"];
        assert_eq!(closest(functions, "testt", 0.75), Some("test"));
        assert_eq!(closest(functions, "other", 0.75), None);
        assert_eq!(closest(functions, "noclosealternative", 0.75), None);
        assert_eq!(closest(["add_them"], "add_thm", 0.75), Some("add_them"));
        assert_eq!(closest(["Books"], "books", 0.75), Some("Books"));
        assert_eq!(closest([], "books", 0.75), None);
    }

    #[test]
    fn grams_are_normalised_and_padded() {
        let g = grams("Ab.", 2);
        assert_eq!(g.len(), 3);
        assert!(["-a", "ab", "b-"].iter().all(|k| g.contains_key(*k)));
        assert_eq!(grams("xxxx", 2)["xx"], 3);
        assert_eq!(edit_similarity("add_thm", "add_them"), 0.875);
    }
}
