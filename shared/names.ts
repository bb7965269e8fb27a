/**
 * What makes two names the same person to a reader. A clientId is stored in
 * NFKC, so full-width `ａｌｉｃｅ` and `alice` are one name; its `nameKey` (a
 * skeleton in the sense of Unicode TS #39, section 4, with a small table
 * instead of the whole confusables.txt) also folds the letters of other
 * scripts that look like Latin ones, so Cyrillic `аlice` and Latin `alice`
 * share a key and cannot both be live. The key is never shown to anyone.
 */

/** The form every clientId and room is kept in. */
export function normalizeName(name: string): string {
  return name.normalize('NFKC');
}

/**
 * Look-alikes that NFKC leaves apart, each mapped to the character it is
 * mistaken for: the Cyrillic and Greek letters drawn like Latin ones, and
 * the Latin and digit shapes that are hard to tell apart in most fonts (I, 1
 * and l; 0 and O; m and rn). Every entry is the mapping Unicode's
 * confusables.txt gives (https://www.unicode.org/Public/security/latest/confusables.txt).
 */
const LOOK_ALIKES: Readonly<Record<string, string>> = {
  // Cyrillic
  а: 'a', г: 'r', е: 'e', о: 'o', р: 'p', с: 'c', у: 'y', х: 'x', ѕ: 's', і: 'i', ј: 'j', һ: 'h', ԁ: 'd', ԛ: 'q', ԝ: 'w', ѡ: 'w', ѵ: 'v', ӏ: 'i', ү: 'y', ҽ: 'e',
  А: 'A', В: 'B', Е: 'E', К: 'K', М: 'M', Н: 'H', О: 'O', Р: 'P', С: 'C', Т: 'T', Х: 'X', У: 'Y', Ѕ: 'S', І: 'l', Ј: 'J', Ӏ: 'l', Ԛ: 'Q', Ԝ: 'W', Ү: 'Y', Ь: 'b', Ѵ: 'V',
  // Greek
  α: 'a', ο: 'o', σ: 'o', ι: 'i', ν: 'v', ρ: 'p', ϱ: 'p', υ: 'u', γ: 'y', ϲ: 'c', ϳ: 'j',
  Α: 'A', Β: 'B', Ε: 'E', Ζ: 'Z', Η: 'H', Ι: 'l', Κ: 'K', Μ: 'M', Ν: 'N', Ο: 'O', Ρ: 'P', Τ: 'T', Υ: 'Y', Χ: 'X', Ϲ: 'C',
  // Latin and digits
  I: 'l', '1': 'l', ı: 'i', '0': 'O', m: 'rn', ɡ: 'g', ɑ: 'a',
};

/**
 * The uniqueness key of a clientId: equal for names a reader would take for
 * one another. Decomposed first so that a look-alike base letter with a mark
 * (Cyrillic `ё`) meets its Latin twin (`ë`); every mapped-to character maps
 * to itself, so applying it twice changes nothing.
 */
export function nameKey(clientId: string): string {
  let folded = '';
  for (const char of normalizeName(clientId).normalize('NFD')) folded += LOOK_ALIKES[char] ?? char;
  return folded.normalize('NFD');
}
