package api

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// checkParams rejects query parameters outside allowed, so a typo
// ("devcie=") is an error rather than a silently unfiltered answer.
func checkParams(q url.Values, allowed ...string) error {
	for k := range q {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("unknown query parameter %q (known: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}
