package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
)

// ReadProperties reads a Java .properties file (Kafka's server.properties) into a map. Rules, as
// java.util.Properties.load: lines starting with '#' or '!' (after blanks) are comments; a key ends
// at the first unescaped '=', ':' or blank, optionally followed by blanks and one '=' or ':'; a line
// ending in an odd number of backslashes continues on the next line (whose leading blanks are
// dropped); \t \n \r \f \uXXXX and \<any> escapes are decoded. Unlike Java, values are trimmed
// (Kafka trims them when parsing). A later duplicate key wins.
func ReadProperties(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	m, err := parseProperties(string(b))
	if err != nil {
		return nil, fmt.Errorf("config: %s:%w", path, err)
	}
	return m, nil
}

// ParseProperties parses the text of a Java .properties file by ReadProperties' rules. Errors
// start with the line number ("12: ...").
func ParseProperties(text string) (map[string]string, error) { return parseProperties(text) }

// parseProperties parses properties text. Errors start with the line number ("12: ...").
func parseProperties(text string) (map[string]string, error) {
	text = strings.TrimPrefix(text, "\ufeff")
	lines := splitLines(text)
	out := map[string]string{}
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := trimLeftBlank(lines[i])
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue // comment lines do not continue, even when they end in '\'
		}
		// Join continuation lines into one logical line.
		var logical strings.Builder
		for {
			if endsInOddBackslashes(line) && i+1 < len(lines) {
				logical.WriteString(line[:len(line)-1])
				i++
				line = trimLeftBlank(lines[i])
				continue
			}
			if endsInOddBackslashes(line) {
				line = line[:len(line)-1] // a trailing '\' on the last line is dropped
			}
			logical.WriteString(line)
			break
		}
		key, value, err := splitKeyValue(logical.String())
		if err != nil {
			return nil, fmt.Errorf("%d: %v", lineNo, err)
		}
		out[key] = value
	}
	return out, nil
}

func splitLines(text string) []string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	return strings.Split(text, "\n")
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

func trimLeftBlank(s string) string {
	for len(s) > 0 && isBlank(s[0]) {
		s = s[1:]
	}
	return s
}

func endsInOddBackslashes(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line (no leading blanks) into its unescaped key and value.
func splitKeyValue(line string) (string, string, error) {
	keyEnd := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++ // skip the escaped character
			continue
		}
		if c == '=' || c == ':' || isBlank(c) {
			keyEnd = i
			break
		}
	}
	rawKey := line[:keyEnd]
	rest := trimLeftBlank(line[keyEnd:])
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = trimLeftBlank(rest[1:])
	}
	// Trim trailing blanks that are not escaped.
	for len(rest) > 0 && isBlank(rest[len(rest)-1]) && !endsInOddBackslashes(rest[:len(rest)-1]) {
		rest = rest[:len(rest)-1]
	}
	key, err := unescape(rawKey)
	if err != nil {
		return "", "", err
	}
	value, err := unescape(rest)
	if err != nil {
		return "", "", err
	}
	return key, value, nil
}

// unescape decodes Java properties escapes.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return "", fmt.Errorf("malformed \\uxxxx escape in %q", s)
			}
			i += 4
			if utf16.IsSurrogate(r) && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if r2, ok := hex4(s, i+3); ok {
					if pair := utf16.DecodeRune(r, r2); pair != unicode.ReplacementChar {
						r = pair
						i += 6
					}
				}
			}
			b.WriteRune(r)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i:i+4], 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}
