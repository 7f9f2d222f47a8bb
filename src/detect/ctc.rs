//! Greedy CTC decoding of a text-line recogniser's output, and the split of a decoded line into
//! words with their horizontal extents.
//!
//! The recogniser gives, for each of `T` time steps (columns of the line image, left to right),
//! a probability per class: class 0 is CTC's "blank", class `i` ≥ 1 is `alphabet[i - 1]`. The
//! best class per step is taken, repeats are merged and blanks dropped; a character's confidence
//! is its step's probability, and it remembers its step so words can be placed on the line.

/// One decoded character: the time steps it spans and its probability.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Glyph {
    pub text: char,
    pub first_step: usize,
    pub last_step: usize,
    pub confidence: f32,
}

/// A word of a line: its text, mean character confidence, and the time steps it spans.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WordSpan {
    pub text: String,
    pub confidence: f32,
    pub first_step: usize,
    pub last_step: usize,
}

/// The characters of `probs` (`steps` × `classes`, row-major).
pub(crate) fn decode(probs: &[f32], classes: usize, alphabet: &[char]) -> Vec<Glyph> {
    let mut out: Vec<Glyph> = Vec::new();
    let mut previous = 0usize;
    if classes == 0 {
        return out;
    }
    for (step, row) in probs.chunks_exact(classes).enumerate() {
        let (best, p) = row
            .iter()
            .copied()
            .enumerate()
            .fold((0, f32::MIN), |b, (i, p)| if p > b.1 { (i, p) } else { b });
        if best != 0 && best == previous {
            // The same character held over several steps: one character, wider.
            if let Some(last) = out.last_mut() {
                last.last_step = step;
                last.confidence = last.confidence.max(p);
            }
        } else if best != 0 {
            if let Some(&text) = alphabet.get(best - 1) {
                out.push(Glyph {
                    text,
                    first_step: step,
                    last_step: step,
                    confidence: p,
                });
            }
        }
        previous = best;
    }
    out
}

/// The words of a decoded line: runs of non-space characters.
pub(crate) fn words(glyphs: &[Glyph]) -> Vec<WordSpan> {
    glyphs
        .split(|g| g.text.is_whitespace())
        .filter(|run| !run.is_empty())
        .map(|run| WordSpan {
            text: run.iter().map(|g| g.text).collect(),
            confidence: run.iter().map(|g| g.confidence).sum::<f32>() / run.len() as f32,
            first_step: run[0].first_step,
            last_step: run[run.len() - 1].last_step,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step per entry: the winning class and its probability (the rest share what is left).
    fn steps(classes: usize, picks: &[(usize, f32)]) -> Vec<f32> {
        let mut out = Vec::new();
        for &(class, p) in picks {
            let rest = (1.0 - p) / (classes - 1) as f32;
            out.extend((0..classes).map(|c| if c == class { p } else { rest }));
        }
        out
    }

    #[test]
    fn repeats_merge_blanks_separate_and_spaces_split_words() {
        let alphabet = ['a', 'b', 'l', ' '];
        // "ab" "b" "l" with a blank between the two b's, a space, then "a".
        let probs = steps(
            5,
            &[
                (1, 0.9),
                (1, 0.8),
                (2, 0.7),
                (0, 0.9),
                (2, 0.6),
                (3, 0.9),
                (4, 0.8),
                (0, 0.9),
                (1, 0.5),
            ],
        );
        let glyphs = decode(&probs, 5, &alphabet);
        let text: String = glyphs.iter().map(|g| g.text).collect();
        assert_eq!(text, "abbl a");
        assert_eq!((glyphs[0].first_step, glyphs[0].last_step), (0, 1));
        assert_eq!(glyphs[0].confidence, 0.9);
        let words = words(&glyphs);
        assert_eq!(words.len(), 2);
        assert_eq!(words[0].text, "abbl");
        assert_eq!((words[0].first_step, words[0].last_step), (0, 5));
        assert!((words[0].confidence - (0.9 + 0.7 + 0.6 + 0.9) / 4.0).abs() < 1e-6);
        assert_eq!((words[1].text.as_str(), words[1].first_step), ("a", 8));
    }

    #[test]
    fn all_blank_or_unknown_classes_decode_to_nothing() {
        let probs = steps(3, &[(0, 0.9), (0, 0.8)]);
        assert!(decode(&probs, 3, &['x', 'y']).is_empty());
        // Class 2 has no character in a one-letter alphabet: skipped, never a panic.
        let probs = steps(3, &[(2, 0.9)]);
        assert!(decode(&probs, 3, &['x']).is_empty());
        assert!(decode(&[], 0, &[]).is_empty());
        assert!(words(&[]).is_empty());
    }
}
