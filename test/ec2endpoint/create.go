package ec2endpoint

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// ---- tag specifications (tag on create) ----

// tagSpecs reads TagSpecification.N.ResourceType and .Tag.M.Key/Value
// where the dialect binds them (aws); elsewhere they stay unread, so a
// strict binding refuses them (UnknownParameter) and a lenient one drops
// them, as Eucalyptus does. allowed are the resource types the action
// creates. The answer maps a resource type to its tags.
func (s *Server) tagSpecs(p *params, allowed ...string) (map[string][]tagKV, *apiError) {
	if !s.opts.Dialect.tagOnCreate() {
		return nil, nil
	}
	out := map[string][]tagKV{}
	for _, n := range p.indices("TagSpecification") {
		pre := fmt.Sprintf("TagSpecification.%d", n)
		rt := p.get(pre + ".ResourceType")
		if !contains(allowed, rt) {
			return nil, apiErr("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		if _, dup := out[rt]; dup {
			return nil, apiErr("InvalidParameterValue", "The same resource type may not be specified more than once in tag specifications: %s", rt)
		}
		var tags []tagKV
		for _, m := range p.indices(pre + ".Tag") {
			tp := fmt.Sprintf("%s.Tag.%d", pre, m)
			k := p.get(tp + ".Key")
			if k == "" {
				return nil, apiErr("InvalidParameterValue", "Tag key must not be empty (%s.Key)", tp)
			}
			tags = append(tags, tagKV{key: k, value: p.get(tp + ".Value"), hasValue: true})
		}
		if e := checkTags(tags); e != nil {
			return nil, e
		}
		if len(tags) > maxTagsPerResource {
			return nil, apiErr("TagLimitExceeded", "The maximum number of tags (%d) for a %s has been reached", maxTagsPerResource, rt)
		}
		out[rt] = tags
	}
	return out, nil
}

// checkTags applies EC2's tag rules: no aws: prefix, key ≤ 127 and value
// ≤ 255 characters.
func checkTags(tags []tagKV) *apiError {
	for _, t := range tags {
		switch {
		case strings.HasPrefix(strings.ToLower(t.key), "aws:"):
			return apiErr("InvalidParameterValue", "Tag key '%s' uses the reserved prefix aws:", t.key)
		case utf8.RuneCountInString(t.key) > maxTagKey:
			return apiErr("InvalidParameterValue", "Tag key exceeds the maximum length of %d characters", maxTagKey)
		case utf8.RuneCountInString(t.value) > maxTagValue:
			return apiErr("InvalidParameterValue", "Tag value exceeds the maximum length of %d characters", maxTagValue)
		}
	}
	return nil
}

// setTags sets tags on a new resource (s.mu held).
func (s *Server) setTags(id string, tags []tagKV) {
	if len(tags) == 0 {
		return
	}
	if s.tags[id] == nil {
		s.tags[id] = map[string]string{}
	}
	for _, t := range tags {
		s.tags[id][t.key] = t.value
	}
}

// ---- client tokens (idempotency) ----

// idempotent looks a ClientToken up (s.mu held): the ID the first request
// with it created, or "" for a new token. The same token with other
// parameters is IdempotentParameterMismatch ("Ensuring idempotency").
func (s *Server) idempotent(action, token string, p *params) (string, *apiError) {
	if token == "" {
		return "", nil
	}
	t, ok := s.tokens()[action+"\x00"+token]
	if !ok {
		return "", nil
	}
	if t.digest != paramDigest(p) {
		return "", apiErr("IdempotentParameterMismatch", "Client token '%s' was used before with different parameters.", token)
	}
	return t.id, nil
}

// remember records what a ClientToken created (s.mu held).
func (s *Server) remember(action, token string, p *params, id string) {
	if token != "" {
		s.tokens()[action+"\x00"+token] = clientToken{id: id, digest: paramDigest(p)}
	}
}

type clientToken struct{ id, digest string }

func (s *Server) tokens() map[string]clientToken {
	if s.clientTokens == nil {
		s.clientTokens = map[string]clientToken{}
	}
	return s.clientTokens
}

// paramDigest sums a request's parameters but the authentication ones.
func paramDigest(p *params) string {
	skip := map[string]bool{}
	for _, k := range authParams {
		skip[k] = true
	}
	var keys []string
	for k := range p.v {
		if !skip[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q\n", k, p.v[k])
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
