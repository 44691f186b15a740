package spec

import (
	"regexp"
	"strings"
)

// Names are checked as a pattern and a length, not a pattern with a
// bounded repetition such as {0,61}: Go's regexp compiles that into one
// state per repeat, and every pattern compiles as the program starts, on
// every command.

// maxLabel is the longest DNS label: names that become labels, hostnames
// or CRI metadata names keep to it.
const maxLabel = 63

// dnsLabel is a DNS label of either case, of any length.
var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$`)

// validDNSName reports whether name is DNS labels separated by dots, each
// of 1-63 letters, digits and '-', starting and ending with a letter or
// digit.
func validDNSName(name string) bool {
	for label := range strings.SplitSeq(name, ".") {
		if len(label) > maxLabel || !dnsLabel.MatchString(label) {
			return false
		}
	}
	return true
}
