package install

import "github.com/kscloud/kscloud/internal/redact"

// Redacted stands where a credential was (redact.Redacted).
const Redacted = redact.Redacted

// RedactURL returns a URL fit to record or print (redact.URL).
func RedactURL(s string) string { return redact.URL(s) }

// RedactText redacts every URL in s (redact.Text).
func RedactText(s string) string { return redact.Text(s) }
