package blindindex

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// A Normalizer maps a value to the canonical form its token is computed
// from, so that values a person considers equal ("Ada@Example.com " and
// "ada@example.com") find each other. Its errors must not contain the
// value. The same field must use the same Normalizer wherever tokens are
// made: in workers, starters and the codec-server blind-index command.
type Normalizer func(value string) (string, error)

// Errors of the built-in normalisers. They never contain the value.
var (
	// ErrEmpty means a value is empty after normalisation.
	ErrEmpty = errors.New("blindindex: value is empty after normalisation")
	// ErrInvalidUTF8 means a value is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("blindindex: value is not valid UTF-8")
	// ErrNoDigits means a phone number has no digits.
	ErrNoDigits = errors.New("blindindex: phone number has no digits")
)

// Trim removes leading and trailing white space. It is the default
// normaliser of fields that [StandardNormalizer] does not name.
func Trim(value string) (string, error) {
	if !utf8.ValidString(value) {
		return "", ErrInvalidUTF8
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return "", ErrEmpty
	}
	return value, nil
}

// Email normalises an e-mail address: white space trimmed, Unicode NFKC,
// then full case folding ("ADA@EXAMPLE.COM", "ａｄａ@example.com" and
// "Ada@Example.com" are equal). Case folding the local part is what users
// expect, though RFC 5321 lets a mail server treat it as case-sensitive.
func Email(value string) (string, error) {
	return foldNFKC(value, false)
}

// Name normalises a person's or organisation's name: white space trimmed,
// runs of white space inside collapsed to one space, Unicode NFKC and full
// case folding ("ADA  Lovelace" equals "ada lovelace").
func Name(value string) (string, error) {
	return foldNFKC(value, true)
}

// Phone keeps only the decimal digits of a phone number, after NFKC (so
// full-width digits count): "+44 20 7946 0958" and "44-20-7946-0958" are
// equal. It does not add country codes: store numbers in one form (E.164)
// or index them that way.
func Phone(value string) (string, error) {
	if !utf8.ValidString(value) {
		return "", ErrInvalidUTF8
	}
	var b strings.Builder
	for _, r := range norm.NFKC.String(value) {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "", ErrNoDigits
	}
	return b.String(), nil
}

// foldNFKC applies NFKC, full case folding and NFKC again (case folding
// can leave a string that is not in NFKC), trimming white space and, with
// collapse, collapsing inner runs of it.
func foldNFKC(value string, collapse bool) (string, error) {
	if !utf8.ValidString(value) {
		return "", ErrInvalidUTF8
	}
	s := norm.NFKC.String(value)
	s = cases.Fold().String(s)
	s = stableFold(norm.NFKC.String(s))
	if collapse {
		s = strings.Join(strings.FieldsFunc(s, unicode.IsSpace), " ")
	} else {
		s = strings.TrimSpace(s)
	}
	if s == "" {
		return "", ErrEmpty
	}
	return s, nil
}

// StandardNormalizer returns the normaliser a field gets by default: Email
// for "email", Name for "name", Phone for "phone", Trim for any other
// field. Options.Fields overrides it per field.
func StandardNormalizer(field string) Normalizer {
	switch field {
	case "email":
		return Email
	case "name":
		return Name
	case "phone":
		return Phone
	}
	return Trim
}

// NormalizerByName returns a built-in normaliser by name: "trim", "email",
// "name" or "phone", for commands and configuration files.
func NormalizerByName(name string) (Normalizer, bool) {
	switch name {
	case "trim":
		return Trim, true
	case "email":
		return Email, true
	case "name":
		return Name, true
	case "phone":
		return Phone, true
	}
	return nil, false
}

// stableFold makes folding idempotent where golang.org/x/text's full case
// folding is not: it maps the Cherokee capitals to their small letters and
// the small letters back to the capitals (Unicode's CaseFolding.txt folds
// both to the capitals), so folding a folded string would change it again
// and one e-mail would have two tokens. A rune of s whose fold is another
// rune that folds back to it is replaced by the smaller of the two (for
// Cherokee, the capital), the same for either spelling. ASCII folds stably
// and is passed through untouched.
func stableFold(s string) string {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return s
	}
	fold := cases.Fold()
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if r >= utf8.RuneSelf {
			if f, ok := foldRune(fold, r); ok && f != r {
				if back, ok := foldRune(fold, f); ok && back == r {
					r = min(r, f)
				}
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

// foldRune is fold applied to the single rune r, when the result is a
// single rune.
func foldRune(fold cases.Caser, r rune) (rune, bool) {
	out := fold.String(string(r))
	f, n := utf8.DecodeRuneInString(out)
	return f, n == len(out) && f != utf8.RuneError
}
